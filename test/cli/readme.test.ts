/**
 * The README is the front door: it documents every setting the gateway reads, and its first exchange is what
 * the gateway prints. The exchange block is run command by command against a real `linkgw serve`; each
 * output is compared with the README's, codes, ids, times, page tokens and payload numbers masked (they come
 * from the keyring). A code or id the README shows is bound to the one the gateway printed in its place, so
 * the README's later commands are run with the real ones.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV_DOC, PACKAGE_ROOT } from '../../src/config/settings.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { loadOrCreateKeyring } from '../../src/keys/keyring-file.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { killServed, serve } from '../helpers/serve-process.js';

const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
afterAll(killServed);

/** The README's first exchange: its commands (`$ …`) with the output shown under each. */
function firstExchange(): { command: string; output: string[] }[] {
  const section = readme.slice(readme.indexOf('## A first exchange'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  const steps: { command: string; output: string[] }[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('$ ')) steps.push({ command: line.slice(2), output: [] });
    else if (line.startsWith('#') || line.trim() === '') continue;
    else steps.at(-1)?.output.push(line);
  }
  return steps;
}

const TOKENS = /\b[0-9A-Z]{28}\b|\b[0-9A-Z]{24}\b/g;
/** Masks what differs from run to run; spaces collapse (column widths follow the values). */
function mask(line: string): string {
  return line
    .replace(/\b[0-9A-Z]{28}\b/g, '<code>')
    .replace(/\b[0-9A-Z]{24}\b/g, '<id>')
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\b/g, '<time>')
    .replace(/--page-token \S+/g, '--page-token <token>')
    .replace(/\bc[0-9a-z]{16}\b/g, '<chain>')
    // The log is named by the host; how many of its leaves the latest checkpoint already covers depends on when
    // the last one was signed (at most LINKGW_CHECKPOINT_INTERVAL_MS after its commit): the record count stays.
    .replace(/^(linkgw\/records\/)\S+(\s+\d+)\s+\d+\s+\d+/, '$1<replica>$2 <signed> <unsigned>')
    .replace(/^(payload\s+.*)$/, (p) => p.replace(/\d+/g, '<n>'))
    .replace(/\s+/g, ' ')
    .trim();
}

function run(command: string, env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const args = command.split(/\s+/);
  expect(args.slice(0, 2), command).toEqual(['node', 'bin/linkgw.js']);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LINKGW_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args.slice(1), { cwd: PACKAGE_ROOT, env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end();
  });
}

describe('README', () => {
  it('names every LINKGW_* setting', () => {
    const names = ENV_DOC.map(([k]) => k);
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) expect(readme, `${n} is not in the README`).toContain(`\`${n}\``);
  });

  it("shows the first exchange as the gateway prints it, with the record counts it ends with", async () => {
    const steps = firstExchange();
    expect(steps.length).toBeGreaterThanOrEqual(7);
    // A keyring under which the README's person is known to the simulated tax office (1 in 16 is not), so the
    // exchange goes as the README tells it.
    const dataDir = tempDir('linkgw-readme-');
    const person = checkPersonalNumber(/client welfare issue (\d{12})/.exec(steps[0]!.command)![1]!);
    if (!person.ok) throw new Error('the README person has a bad number');
    for (;;) {
      const { keyring } = loadOrCreateKeyring(join(dataDir, 'keyring.json'));
      if (isEnrolled('tax', new AgencyCodec(keyring).encode('tax', person.value))) break;
      rmSync(join(dataDir, 'keyring.json'));
    }
    mkdirSync(join(dataDir, 'pki'), { recursive: true });
    const gw = await serve({ LINKGW_DATA_DIR: dataDir });
    const env = { LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: gw.address };

    const bound = new Map<string, string>();
    for (const step of steps) {
      const command = step.command.replace(TOKENS, (t) => bound.get(t) ?? t).replace(/--page-token (\S+)/, (_m, t: string) => `--page-token ${bound.get(t) ?? t}`);
      const r = await run(command, env);
      const printed = (r.stdout + r.stderr).split('\n').filter((l) => l !== '');
      expect(printed.map(mask), `${step.command}\n${r.stdout}${r.stderr}`).toEqual(step.output.map(mask));
      // Bind the README's tokens to the real ones, position by position.
      step.output.forEach((shown, i) => {
        const real = printed[i]!;
        const a = shown.match(TOKENS) ?? [];
        const b = real.match(TOKENS) ?? [];
        a.forEach((t, j) => bound.set(t, b[j]!));
        const ta = /--page-token (\S+)/.exec(shown);
        const tb = /--page-token (\S+)/.exec(real);
        if (ta && tb) bound.set(ta[1]!, tb[1]!);
      });
      const failed = step.output.some((l) => l.startsWith('linkgw: '));
      expect(r.status, step.command).toBe(failed ? 1 : 0);
    }
    gw.child.kill('SIGTERM');
    await new Promise((r) => (gw.child.exitCode !== null ? r(null) : gw.child.on('exit', r)));
    rmSync(dataDir, { recursive: true, force: true });
  });
});
