/**
 * The witness (C2SP tlog-witness over real HTTP): it cosigns a log's checkpoints as the tree grows, answers
 * 409 with the size it knows, refuses forks (422), rollbacks (400), unknown logs (404) and wrong keys (403),
 * keeps refusing them after a restart from its state file, and a gateway pushes every checkpoint to it and
 * serves the cosigned checkpoint, which the Go reference implementations open.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signCheckpoint } from '../../src/core/checkpoint.js';
import { cosignatureVerifierFromKey } from '../../src/core/cosignature.js';
import { consistencyProof, EMPTY_ROOT, leafHash, rootOfLeafHashes, type NodeSource } from '../../src/core/merkle.js';
import { ed25519NoteSigner, ed25519NoteVerifier, openNote, rawEd25519, SIG_ED25519, verifierKey } from '../../src/core/signed-note.js';
import { loadOrCreateKeyring } from '../../src/keys/keyring-file.js';
import { fleetWitnessEntry, logVerifierKeys } from '../../src/keys/note-keys.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { cosignedNote } from '../../src/records/schema.js';
import { startWitness, type RunningWitness } from '../../src/witness/witness-command.js';
import { originHash } from '../../src/witness/witness.js';
import { goVerify } from '../interop/go-verifier.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';

const ORIGIN = 'linkgw/records/w-test';
const key = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return new KeyObjectSigner('seal-1', privateKey, publicKey);
};
const logKey = key();
const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
const source = (ls: Buffer[]): NodeSource => async (ids) => ids.map(({ level, index }) => rootOfLeafHashes(ls.slice(index * 2 ** level, (index + 1) * 2 ** level)));

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
});

async function witness(dir = tempDir(), logs = [verifierKey(ORIGIN, SIG_ED25519, rawEd25519(logKey.publicKey))]): Promise<RunningWitness & { dir: string }> {
  const w = await startWitness({ listen: '127.0.0.1:0', dir, name: 'witness.test/w1', logs, logLevel: 'error' }, silentLogger);
  stops.push(() => w.close());
  return { ...w, dir };
}

async function checkpoint(size: number, ls = leaves, signer = logKey, origin = ORIGIN): Promise<string> {
  return signCheckpoint({ origin, size, rootHash: rootOfLeafHashes(ls.slice(0, size)), extensions: [] }, ed25519NoteSigner(origin, signer));
}

async function add(w: RunningWitness, old: number, proof: Buffer[], note: string) {
  const res = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: `old ${old}\n${proof.map((h) => h.toString('base64') + '\n').join('')}\n${note}` });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('the witness', () => {
  it('cosigns a growing log, says which size it knows, and serves the cosigned checkpoint', async () => {
    const w = await witness();
    const cp5 = await checkpoint(5);
    const first = await add(w, 0, [], cp5);
    expect(first.status).toBe(200);
    expect(first.body).toMatch(/^\u2014 witness\.test\/w1 [A-Za-z0-9+/=]+\n$/);
    expect(openNote(cp5 + first.body, [cosignatureVerifierFromKey(w.verifierKey)]).verified).toHaveLength(1);
    // The log forgot what the witness has: 409 with the size, then it sends a proof from there.
    const cp12 = await checkpoint(12);
    expect(await add(w, 0, [], cp12)).toEqual({ status: 409, type: 'text/x.tlog.size', body: '5\n' });
    expect((await add(w, 5, await consistencyProof(5, 12, source(leaves)), cp12)).status).toBe(200);
    // The same checkpoint again is fine (nothing new, nothing inconsistent).
    expect((await add(w, 12, [], cp12)).status).toBe(200);
    const served = await fetch(`${w.url}/${originHash(ORIGIN)}/checkpoint`);
    const note = await served.text();
    expect(served.status).toBe(200);
    expect(openNote(note, [ed25519NoteVerifier(ORIGIN, logKey.publicKey), cosignatureVerifierFromKey(w.verifierKey)]).verified).toHaveLength(2);
    expect((await fetch(`${w.url}/${originHash('linkgw/records/other')}/checkpoint`)).status).toBe(404);
  });

  it('refuses a fork, a rollback, an unknown log, a wrong key and malformed requests, also after a restart', async () => {
    let w = await witness();
    expect((await add(w, 0, [], await checkpoint(16))).status).toBe(200);
    // A fork: the same log key signs a tree of 20 whose leaf 3 differs.
    const forked = [...leaves];
    forked[3] = leafHash(Buffer.from('rewritten'));
    expect((await add(w, 16, await consistencyProof(16, 20, source(forked)), await checkpoint(20, forked))).status).toBe(422);
    // Another root at the size it cosigned.
    expect((await add(w, 16, [], await checkpoint(16, forked))).status).toBe(422);
    // A proof that does not fit.
    expect((await add(w, 16, await consistencyProof(15, 20, source(leaves)), await checkpoint(20))).status).toBe(422);
    // A rollback: a smaller checkpoint, whatever the old size says.
    expect((await add(w, 16, [], await checkpoint(9))).status).toBe(400);
    expect((await add(w, 9, [], await checkpoint(9))).status).toBe(409);
    // Not its log; not the log's key; not a request.
    expect((await add(w, 0, [], await checkpoint(3, leaves, logKey, 'linkgw/records/other'))).status).toBe(404);
    expect((await add(w, 16, [], await checkpoint(20, leaves, key()))).status).toBe(403);
    expect((await add(w, 0, [], 'not a note\n')).status).toBe(400);
    expect((await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: 'old 01\n\n' })).status).toBe(400);
    // The empty tree has the root of nothing.
    const badEmpty = await signCheckpoint({ origin: ORIGIN, size: 0, rootHash: leaves[0]!, extensions: [] }, ed25519NoteSigner(ORIGIN, logKey));
    expect((await add(w, 0, [], badEmpty)).status).toBe(409);

    // Restarted from its state file, it still knows 16 and still refuses to go back.
    await w.close();
    w = await witness(w.dir);
    expect((await add(w, 0, [], await checkpoint(9))).body).toBe('16\n');
    expect((await add(w, 16, [], await checkpoint(9))).status).toBe(400);
    expect((await add(w, 16, await consistencyProof(16, 30, source(leaves)), await checkpoint(30))).status).toBe(200);
    // A new log under a fleet prefix, and the empty-tree rule.
    const fleet = await witness(tempDir(), [fleetWitnessEntry('linkgw/records', logKey.publicKey)]);
    expect((await add(fleet, 0, [], await checkpoint(0))).status).toBe(200);
    expect(await checkpoint(0)).toContain(EMPTY_ROOT.toString('base64'));
    expect((await add(fleet, 0, [], await signCheckpoint({ origin: 'linkgw/records/new-replica', size: 0, rootHash: leaves[0]!, extensions: [] }, ed25519NoteSigner('linkgw/records/new-replica', logKey)))).status).toBe(422);
    expect((await add(fleet, 0, [], await checkpoint(3, leaves, logKey, 'elsewhere/records/x'))).status).toBe(404);
  });
});

describe('a gateway with a witness', () => {
  it('pushes each checkpoint, keeps the cosignature and serves a checkpoint that the Go implementations open', async () => {
    const dataDir = tempDir();
    const { keyring } = loadOrCreateKeyring(join(dataDir, 'keyring.json'));
    const w = await witness(tempDir(), [fleetWitnessEntry('linkgw/records', keyring.sealSigner.publicKey)]);
    const h = await startHarness({
      dataDir,
      env: { LINKGW_REPLICA_ID: 'witnessed', LINKGW_CHECKPOINT_INTERVAL_MS: '50', LINKGW_WITNESSES: `${w.verifierKey}=${w.url}` },
    });
    stops.push(() => h.stop());
    const c = h.client('pension');
    for (const n of ['123456789018', '621498320257']) await c.issueCode(n);
    await until(async () => {
      const [cp] = await h.gw.store.latestCheckpoints();
      return cp !== undefined && cp.size === 2 && cp.cosignatures !== '';
    }, 20_000);
    for (const n of ['123456789018']) await c.issueCode(n);
    await until(async () => {
      const [cp] = await h.gw.store.latestCheckpoints();
      return cp !== undefined && cp.size === 3 && cp.cosignatures !== '';
    }, 20_000);
    const [cp] = await h.gw.store.latestCheckpoints();
    const logVkey = logVerifierKeys(h.gw.keyring.sealPublicKeys, 'linkgw/records/witnessed')['seal-1']!;
    const out = await goVerify({ logs: [logVkey], witnesses: [w.verifierKey], checkpoints: [cosignedNote(cp!)] });
    expect(out.checkpoints).toEqual([{ ok: true, origin: 'linkgw/records/witnessed', size: 3, cosigners: ['witness.test/w1'] }]);
    // The witness's own copy says the same.
    const served = await (await fetch(`${w.url}/${originHash('linkgw/records/witnessed')}/checkpoint`)).text();
    expect(served.split('\n').slice(0, 3)).toEqual(cosignedNote(cp!).split('\n').slice(0, 3));
  });
});
