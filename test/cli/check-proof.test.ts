/**
 * Proofs at the command line (issue 21 item 2): `linkgw client disclosure records CODE --json` and
 * `linkgw client AGENCY record-proof ID --json` print each record with its inclusion proof, one
 * linkage.v1.AccessRecord a line in canonical proto3 JSON; `linkgw records check-proof FILE` checks them
 * offline against the keyring's log key (or `--verifier-key`) and witness keys, and fails, naming what, when
 * the record or its proof was edited.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { cosign, cosignerVerifierKey } from '../../src/core/cosignature.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { parseNote } from '../../src/core/signed-note.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { describeLogKeys } from '../../src/records/log-commands.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
});

function linkgw(env: Record<string, string>, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type Json = Record<string, unknown> & { proof: Record<string, unknown> };
const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Json);

describe('proofs at the command line', () => {
  let h: Harness;
  const REPLICA = 'cli-proofs';

  it('prints each record with its proof, and check-proof verifies them offline; an edited record or proof fails', { timeout: 180_000 }, async () => {
    h = await startHarness({ env: { LINKGW_REPLICA_ID: REPLICA, LINKGW_CHECKPOINT_INTERVAL_MS: '50' } });
    stops.push(() => h.stop());
    const env = { LINKGW_DATA_DIR: h.dataDir, LINKGW_REPLICA_ID: REPLICA };
    const codec = new AgencyCodec(h.gw.keyring);
    const person = population(300, 31).find((n) => {
      const c = checkPersonalNumber(n);
      return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
    })!;
    const pension = h.client('pension');
    const { code } = await pension.issueCode(person);
    const q = await pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    const dc = (await h.client('disclosure').issueCode(person)).code;
    const size = h.gw.writer.size;
    await until(async () => ((await h.gw.store.latestCheckpoints())[0]?.size ?? 0) >= size, 20_000);

    // The disclosure agency's listing: one AccessRecord a line, each with its proof.
    const listed = await linkgw(env, ['client', 'disclosure', 'records', dc, '--json', '--address', h.gw.address]);
    expect(listed.code, listed.stderr).toBe(0);
    const records = lines(listed.stdout);
    expect(records).toHaveLength(3);
    for (const r of records) {
      expect(r.proof).toMatchObject({ origin: `linkgw/records/${REPLICA}`, leaf: expect.any(String), leafHash: expect.any(String), checkpoint: expect.any(String) });
      expect(typeof r.requestedAt).toBe('string');
    }
    const dir = tempDir();
    const file = join(dir, 'records.jsonl');
    writeFileSync(file, listed.stdout);
    const ok = await linkgw(env, ['records', 'check-proof', file]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('3 records, all proven');

    // A party's copy by record id (GetRecordProof), checked with the verifier key `keys show` prints.
    const copy = await linkgw(env, ['client', 'tax', 'record-proof', q.recordId, '--json', '--address', h.gw.address]);
    expect(copy.code, copy.stderr).toBe(0);
    const [own] = lines(copy.stdout);
    expect(own).toMatchObject({ recordId: q.recordId, requester: 'pension', provider: 'tax', proof: expect.any(Object) });
    const vkey = describeLogKeys(h.gw.keyring.sealPublicKeys, h.gw.keyring.sealSigner.keyId, `linkgw/records/${REPLICA}`, REPLICA).currentNoteVerifierKey as string;
    const copyFile = join(dir, 'copy.json');
    // A JSON array is read too.
    writeFileSync(copyFile, JSON.stringify([own]));
    const elsewhere = { LINKGW_DATA_DIR: tempDir() };
    const byKey = await linkgw(elsewhere, ['records', 'check-proof', copyFile, '--verifier-key', vkey, '--json']);
    expect(byKey.code, byKey.stdout + byKey.stderr).toBe(0);
    expect(lines(byKey.stdout)[0]).toMatchObject({ recordId: q.recordId, ok: true });

    // Another log's key does not verify it.
    const { publicKey: otherKey } = generateKeyPairSync('ed25519');
    const otherVkey = describeLogKeys(new Map([['seal-1', otherKey]]), 'seal-1', `linkgw/records/${REPLICA}`, REPLICA).currentNoteVerifierKey as string;
    const wrongKey = await linkgw(elsewhere, ['records', 'check-proof', copyFile, '--verifier-key', otherVkey]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toContain('the checkpoint does not verify');

    // Edits, one a line of one file: each line fails on its own, naming what does not match.
    const flip = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      b[0] = b[0]! ^ 1;
      return b.toString('base64');
    };
    const edits: [RegExp, (r: Json) => void][] = [
      // The record shown.
      [/differs from its leaf in: item/, (r) => (r.item = 'pension-benefit')],
      [/differs from its leaf in: requested at/, (r) => (r.requestedAt = '2020-01-01T00:00:00Z')],
      // The proof: the leaf hash, the checkpoint's root, the tree size, the proof removed.
      [/does not hash to the proof's leaf hash/, (r) => (r.proof.leafHash = flip(r.proof.leafHash as string))],
      [/the checkpoint does not verify/, (r) => (r.proof.checkpoint = (r.proof.checkpoint as string).replace(/\n([A-Za-z0-9+/]{43}=)\n/, (_m, root: string) => `\n${flip(root)}\n`))],
      [/the checkpoint signs/, (r) => (r.proof.treeSize = String(Number(r.proof.treeSize) + 1))],
      [/no proof/, (r) => delete (r as Partial<Json>).proof],
    ];
    // A path hash, when the tree is large enough for the proof to have one.
    if ((own!.proof.hashes as string[] | undefined)?.length) edits.push([/does not lead to the checkpoint's root/, (r) => ((r.proof.hashes as string[])[0] = flip((r.proof.hashes as string[])[0]!))]);
    const edited = join(dir, 'edited.jsonl');
    writeFileSync(edited, edits.map(([, edit]) => {
      const r = structuredClone(own!);
      edit(r);
      return JSON.stringify(r);
    }).join('\n') + `\n${JSON.stringify(own)}\n`);
    const out = await linkgw(env, ['records', 'check-proof', edited, '--json']);
    expect(out.code).toBe(1);
    const results = lines(out.stdout) as unknown as { ok?: boolean; problem?: string; failed?: number }[];
    edits.forEach(([problem], i) => expect(results[i], String(problem)).toMatchObject({ ok: false, problem: expect.stringMatching(problem) }));
    // The untouched copy on the last line still passes; the totals count the rest as failed.
    expect(results[edits.length]).toMatchObject({ ok: true });
    expect(results.at(-1)).toMatchObject({ records: edits.length + 1, failed: edits.length });

    // Witnesses: a checkpoint cosigned by the witness given passes; one it did not cosign fails.
    const w = generateKeyPairSync('ed25519');
    const witness = new KeyObjectSigner('w', w.privateKey, w.publicKey);
    const wkey = cosignerVerifierKey('example.org/witness', w.publicKey);
    const note = own!.proof.checkpoint as string;
    const line = await cosign(parseNote(note).text, 'example.org/witness', witness, Math.floor(Date.now() / 1000));
    const cosigned = structuredClone(own!);
    cosigned.proof.checkpoint = `${note}${line}`;
    // One line cosigned by the witness given, one (the copy as the gateway served it) not.
    const cosignedFile = join(dir, 'cosigned.jsonl');
    writeFileSync(cosignedFile, `${JSON.stringify(cosigned)}\n${JSON.stringify(own)}\n`);
    const withWitness = await linkgw(env, ['records', 'check-proof', cosignedFile, '--witness-key', wkey]);
    expect(withWitness.code).toBe(1);
    expect(withWitness.stdout).toContain('ok, cosigned by example.org/witness');
    expect(withWitness.stdout).toContain('not cosigned by the witness example.org/witness');
    expect(withWitness.stdout).toContain('2 records, 1 failed');
  });
});
