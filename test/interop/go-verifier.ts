/**
 * The independent verifier (test/interop/main.go, built from golang.org/x/mod/sumdb/note,
 * github.com/transparency-dev/formats and github.com/transparency-dev/merkle): built once per test process with
 * `go build` into a temporary directory, then fed one JSON document per run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DIR = import.meta.dirname;

export interface InteropRecord {
  recordId: string;
  requestedAt: number;
  providedAt: number | null;
  requester: string;
  provider: string;
  procedure: string;
  legalBasisRow: string;
  item: string;
  outcome: number;
  nonDisclosable: boolean;
  persons: number;
  /** base64 */
  subjectsCommitment: string;
  /** Outcome NOT_RELEASED only. */
  correctsRecordId?: string;
}

export interface InteropInput {
  logs: string[];
  witnesses?: string[];
  checkpoints?: string[];
  inclusion?: { checkpoint: string; leafIndex: number; treeSize: number; hashes: string[]; leafHash: string; record?: InteropRecord }[];
  consistency?: { old: string; new: string; hashes: string[] }[];
}

export interface InteropResult {
  ok: boolean;
  error?: string;
  origin?: string;
  size?: number;
  cosigners?: string[];
}

export interface InteropOutput {
  checkpoints: InteropResult[];
  inclusion: InteropResult[];
  consistency: InteropResult[];
}

let built: Promise<string> | undefined;

/** Builds the verifier (the module cache makes later builds fast; the first one downloads the modules). */
export function buildGoVerifier(): Promise<string> {
  built ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'linkgw-interop-')), 'interop');
    await run('go', ['build', '-mod=readonly', '-o', out, '.'], { cwd: DIR, env: { ...process.env, CGO_ENABLED: '0' } });
    return out;
  })();
  return built;
}

export async function goVerify(input: InteropInput): Promise<InteropOutput> {
  const bin = await buildGoVerifier();
  return new Promise((resolve, reject) => {
    const child = execFile(bin, [], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`interop verifier failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as InteropOutput);
    });
    child.stdin!.end(JSON.stringify(input));
  });
}

export const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
