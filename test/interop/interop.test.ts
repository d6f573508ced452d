/**
 * Checkpoints, signatures, cosignatures and proofs made by linkgw's core, checked by an independent Go
 * implementation (golang.org/x/mod/sumdb/note, transparency-dev/formats v0.1.1, transparency-dev/merkle v0.0.2).
 * Forged items must fail there too, so the verifier is shown able to say no.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { signCheckpoint } from '../../src/core/checkpoint.js';
import { CompactRange } from '../../src/core/compact-range.js';
import { cosign, cosignerVerifierKey } from '../../src/core/cosignature.js';
import { consistencyProof, inclusionProof, leafHash, rootOfLeafHashes, type NodeSource } from '../../src/core/merkle.js';
import { encodeRecordLeaf, Persons, subjectCommitment, subjectsCommitment, type LeafFields } from '../../src/core/record-leaf.js';
import { ed25519NoteSigner, parseNote, rawEd25519, SIG_ED25519, verifierKey } from '../../src/core/signed-note.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { b64, buildGoVerifier, goVerify, type InteropRecord } from './go-verifier.js';

const key = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return new KeyObjectSigner('seal-1', privateKey, publicKey);
};
const ORIGIN = 'linkgw/records/interop-a';
const logKey = key();
const logVkey = verifierKey(ORIGIN, SIG_ED25519, rawEd25519(logKey.publicKey));
const witnessKey = key();
const WITNESS = 'witness.example/w1';
const witnessVkey = cosignerVerifierKey(WITNESS, witnessKey.publicKey);

function record(i: number): LeafFields {
  const recordId = `R${String(i).padStart(23, '0')}`;
  const batch = i % 7 === 3;
  // Record 9 says that record 8's answer was not released (its leaf goes on with record 8's id).
  if (i === 9) return { ...record(8), recordId, providedAt: null, outcome: Outcome.NOT_RELEASED, correctsRecordId: record(8).recordId, subjectsCommitment: subjectCommitment(recordId, 'S8') };
  return {
    recordId,
    requestedAt: 1_790_000_000_000 + i,
    providedAt: i % 2 ? null : 1_790_000_000_500 + i,
    requester: 'pension',
    provider: i % 3 ? 'tax' : '',
    procedure: 'pension.eligibility',
    legalBasisRow: i % 5 ? 'B2-001' : '',
    item: 'income ・ 所得',
    outcome: i % 2 ? Outcome.DENIED : Outcome.PROVIDED,
    nonDisclosable: i % 11 === 0,
    persons: batch ? Persons.BATCH : Persons.ONE,
    subjectsCommitment: batch ? subjectsCommitment(recordId, ['A', 'B']) : subjectCommitment(recordId, `S${i}`),
  };
}
const asInterop = (f: LeafFields): InteropRecord => ({ ...f, subjectsCommitment: b64(f.subjectsCommitment) });

const N = 37;
const records = Array.from({ length: N }, (_, i) => record(i));
const leafHashes = records.map((r, i) => leafHash(encodeRecordLeaf(ORIGIN, i, r)));
const source: NodeSource = async (ids) => ids.map(({ level, index }) => rootOfLeafHashes(leafHashes.slice(index * 2 ** level, (index + 1) * 2 ** level)));
const checkpoints = new Map<number, string>();

async function checkpointAt(size: number, signer = logKey, origin = ORIGIN): Promise<string> {
  return signCheckpoint({ origin, size, rootHash: rootOfLeafHashes(leafHashes.slice(0, size)), extensions: [] }, ed25519NoteSigner(origin, signer));
}

beforeAll(async () => {
  await buildGoVerifier();
  const range = CompactRange.empty();
  for (const h of leafHashes) {
    range.append(h);
    if ([1, 5, 16, 20, N].includes(range.size)) checkpoints.set(range.size, await checkpointAt(range.size));
  }
}, 180_000);

describe('the Go reference implementations', () => {
  it('open our checkpoints and the witness cosignature on them, and refuse forged ones', async () => {
    const cp = checkpoints.get(N)!;
    const { text } = parseNote(cp);
    const cosigned = cp + (await cosign(text, WITNESS, witnessKey, Math.floor(Date.now() / 1000)));
    const wrongKey = await checkpointAt(N, key());
    const otherOrigin = await checkpointAt(N, logKey, 'linkgw/records/interop-b');
    const forgedCosig = cp + (await cosign(text.replace(`\n${N}\n`, `\n${N + 1}\n`), WITNESS, witnessKey, 1));
    const out = await goVerify({ logs: [logVkey], witnesses: [witnessVkey], checkpoints: [cp, cosigned, wrongKey, otherOrigin, forgedCosig, cp.replace(`\n${N}\n`, `\n${N - 1}\n`)] });
    expect(out.checkpoints.slice(0, 2)).toEqual([
      { ok: true, origin: ORIGIN, size: N },
      { ok: true, origin: ORIGIN, size: N, cosigners: [WITNESS] },
    ]);
    expect(out.checkpoints.slice(2).map((r) => r.ok)).toEqual([false, false, false, false]);
  });

  it('verify our inclusion proofs, with the leaf re-encoded from the record as docs/transparency.md says', async () => {
    const inclusion = [];
    for (const [size, cp] of checkpoints)
      for (let i = 0; i < size; i += 3)
        inclusion.push({ checkpoint: cp, leafIndex: i, treeSize: size, hashes: (await inclusionProof(i, size, source)).map(b64), leafHash: b64(leafHashes[i]!), record: asInterop(records[i]!) });
    const out = await goVerify({ logs: [logVkey], inclusion });
    expect(out.inclusion.filter((r) => !r.ok)).toEqual([]);
    expect(out.inclusion).toHaveLength(inclusion.length);
  });

  it('refuse a forged record, a forged leaf, a wrong index or size, and an altered proof', async () => {
    const cp = checkpoints.get(20)!;
    const good = { checkpoint: cp, leafIndex: 6, treeSize: 20, hashes: (await inclusionProof(6, 20, source)).map(b64), leafHash: b64(leafHashes[6]!), record: asInterop(records[6]!) };
    const altered = [...good.hashes];
    altered[1] = b64(randomBytes(32));
    const out = await goVerify({
      logs: [logVkey],
      inclusion: [
        good,
        { ...good, record: { ...good.record, item: 'pension-benefit' } },
        { ...good, record: { ...good.record, nonDisclosable: true } },
        { ...good, leafHash: b64(leafHashes[7]!), record: undefined },
        { ...good, leafIndex: 7 },
        { ...good, treeSize: 16 },
        { ...good, checkpoint: checkpoints.get(16)!, treeSize: 16 },
        { ...good, hashes: altered },
        { ...good, hashes: good.hashes.slice(1) },
      ],
    });
    expect(out.inclusion.map((r) => r.ok)).toEqual([true, false, false, false, false, false, false, false, false]);
  });

  it('verify our consistency proofs between every pair of checkpoints, and refuse a fork', async () => {
    const sizes = [...checkpoints.keys()];
    const consistency = [];
    for (const a of sizes) for (const b of sizes) if (a <= b) consistency.push({ old: checkpoints.get(a)!, new: checkpoints.get(b)!, hashes: (await consistencyProof(a, b, source)).map(b64) });
    // A fork: a tree of 20 whose leaf 2 differs, signed by the same key.
    const forkedLeaves = [...leafHashes.slice(0, 20)];
    forkedLeaves[2] = leafHash(Buffer.from('rewritten'));
    const forked = await signCheckpoint({ origin: ORIGIN, size: 20, rootHash: rootOfLeafHashes(forkedLeaves), extensions: [] }, ed25519NoteSigner(ORIGIN, logKey));
    const out = await goVerify({
      logs: [logVkey],
      consistency: [
        ...consistency,
        { old: checkpoints.get(5)!, new: forked, hashes: (await consistencyProof(5, 20, source)).map(b64) },
        { old: checkpoints.get(20)!, new: checkpoints.get(5)!, hashes: [] },
      ],
    });
    expect(out.consistency.slice(0, consistency.length).filter((r) => !r.ok)).toEqual([]);
    expect(out.consistency.slice(consistency.length).map((r) => r.ok)).toEqual([false, false]);
  });
});
