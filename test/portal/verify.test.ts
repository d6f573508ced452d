/**
 * The browser's verifier (src/portal/web/verify.ts), run under Node's WebCrypto against a log built with the
 * gateway's core (leaves, tree, proofs, checkpoints, cosignatures): what the core makes must verify, and every
 * kind of tampering must fail, as the Go reference verifier (test/interop) says for the same items.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { create, toJson } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { beforeAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { signCheckpoint } from '../../src/core/checkpoint.js';
import { cosign, cosignerVerifierKey } from '../../src/core/cosignature.js';
import { consistencyProof, inclusionProof, leafHash, rootOfLeafHashes, type NodeSource } from '../../src/core/merkle.js';
import { encodeRecordLeaf, Persons, subjectCommitment, subjectsCommitment, type LeafFields } from '../../src/core/record-leaf.js';
import { ed25519NoteSigner, parseNote, rawEd25519, SIG_ED25519, verifierKey } from '../../src/core/signed-note.js';
import { AccessRecordSchema } from '../../src/gen/linkage/v1/records_pb.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import {
  checkConsistency,
  fromBase64,
  openCheckpoint,
  parseVerifierKey,
  trustedKeys,
  verifyRecord,
  type AccessRecordJson,
  type TrustedKeys,
} from '../../src/portal/web/verify.js';

const key = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return new KeyObjectSigner('seal-1', privateKey, publicKey);
};
const ORIGIN = 'linkgw/records/portal-a';
const logKey = key();
const logVkey = verifierKey(ORIGIN, SIG_ED25519, rawEd25519(logKey.publicKey));
const witnessKey = key();
const WITNESS = 'witness.example/w1';
const witnessVkey = cosignerVerifierKey(WITNESS, witnessKey.publicKey);

function fields(i: number): LeafFields {
  const recordId = `R${String(i).padStart(23, '0')}`;
  if (i === 9) return { ...fields(8), recordId, providedAt: null, outcome: Outcome.NOT_RELEASED, correctsRecordId: fields(8).recordId, subjectsCommitment: subjectCommitment(recordId, 'S8') };
  const batch = i % 7 === 3;
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
    nonDisclosable: i === 11,
    persons: batch ? Persons.BATCH : Persons.ONE,
    subjectsCommitment: batch ? subjectsCommitment(recordId, ['A', 'B']) : subjectCommitment(recordId, `S${i}`),
  };
}

const N = 37;
const all = Array.from({ length: N }, (_, i) => fields(i));
const leaves = all.map((r, i) => encodeRecordLeaf(ORIGIN, i, r));
const hashes = leaves.map(leafHash);
const source: NodeSource = async (ids) => ids.map(({ level, index }) => rootOfLeafHashes(hashes.slice(index * 2 ** level, (index + 1) * 2 ** level)));
const checkpoint = (size: number, signer = logKey, hs = hashes) =>
  signCheckpoint({ origin: ORIGIN, size, rootHash: rootOfLeafHashes(hs.slice(0, size)), extensions: [] }, ed25519NoteSigner(ORIGIN, signer));

/** A record as the portal sends it: protobuf-es canonical proto3 JSON of linkage.v1.AccessRecord, with its proof. */
async function recordJson(i: number, size: number, note?: string): Promise<AccessRecordJson> {
  const f = all[i]!;
  const msg = create(AccessRecordSchema, {
    recordId: f.recordId,
    requestedAt: timestampFromMs(f.requestedAt),
    ...(f.providedAt !== null ? { providedAt: timestampFromMs(f.providedAt) } : {}),
    requester: f.requester,
    provider: f.provider,
    procedure: f.procedure,
    legalBasisRow: f.legalBasisRow,
    item: f.item,
    outcome: f.outcome,
    cursor: 'c',
    correctsRecordId: f.correctsRecordId ?? '',
    proof: {
      origin: ORIGIN,
      leafIndex: BigInt(i),
      treeSize: BigInt(size),
      hashes: await inclusionProof(i, size, source),
      leafHash: hashes[i]!,
      checkpoint: note ?? (await checkpoint(size)),
      leaf: leaves[i]!,
    },
  });
  return toJson(AccessRecordSchema, msg) as AccessRecordJson;
}

let trust: TrustedKeys;
beforeAll(async () => {
  trust = await trustedKeys([logVkey, witnessVkey]);
});

describe('verifier keys', () => {
  it('reads log and witness keys, and refuses a key whose id does not match', async () => {
    expect(trust.logs.map((k) => k.name)).toEqual([ORIGIN]);
    expect(trust.witnesses.map((k) => k.name)).toEqual([WITNESS]);
    expect(trust.logs[0]!.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const [name, id] = logVkey.split('+');
    await expect(parseVerifierKey(`${name}+00000000+${logVkey.slice(name!.length + id!.length + 2)}`)).rejects.toThrow(/key id/);
    await expect(parseVerifierKey('nonsense')).rejects.toThrow(/malformed/);
  });
});

describe('a record and its inclusion proof', () => {
  it('verifies every disclosable record of the core-built log, at several tree sizes', async () => {
    for (const size of [1, 5, 16, 20, N]) {
      const note = await checkpoint(size);
      for (let i = 0; i < size; i++) {
        const v = await verifyRecord(await recordJson(i, size, note), trust);
        expect(v.status, `leaf ${i} of ${size}: ${v.reason}`).toBe(i === 11 ? 'failed' : 'verified');
        if (i === 11) expect(v.code).toBe('non-disclosable');
      }
    }
  });

  it('a record without a proof is pending', async () => {
    const r = await recordJson(2, N);
    delete r.proof;
    expect((await verifyRecord(r, trust)).status).toBe('pending');
  });

  it('fails a record whose shown fields differ from its leaf, naming the field', async () => {
    const good = await recordJson(6, N);
    const cases: [Partial<AccessRecordJson>, RegExp][] = [
      [{ item: 'pension-benefit' }, /item/],
      [{ requester: 'welfare' }, /requester/],
      [{ provider: 'employment' }, /provider/],
      [{ procedure: 'welfare.public-assistance' }, /procedure/],
      [{ legalBasisRow: 'B2-002' }, /legal-basis/],
      [{ outcome: 'OUTCOME_DENIED' }, /outcome/],
      [{ recordId: 'X'.repeat(24) }, /id/],
      [{ requestedAt: '2026-09-21T12:26:40.007Z' }, /request time/],
      [{ providedAt: undefined }, /provision time/],
      [{ correctsRecordId: 'R00000000000000000000001' }, /corrected/],
    ];
    for (const [change, why] of cases) {
      const v = await verifyRecord({ ...good, ...change }, trust);
      expect(v.status).toBe('failed');
      expect(v.code).toBe('leaf-mismatch');
      expect(v.reason).toMatch(why);
    }
  });

  it('fails a changed leaf, leaf hash, path, index, size or checkpoint', async () => {
    const good = await recordJson(6, 20);
    const p = good.proof!;
    const flipped = fromBase64(p.leaf!);
    flipped[flipped.length - 1]! ^= 1;
    const altered = [...p.hashes!];
    altered[1] = randomBytes(32).toString('base64');
    const cases: [AccessRecordJson, string][] = [
      [{ ...good, proof: { ...p, leaf: Buffer.from(flipped).toString('base64') } }, 'leaf-hash'],
      [{ ...good, proof: { ...p, leafHash: hashes[7]!.toString('base64') } }, 'leaf-hash'],
      [{ ...good, proof: { ...p, hashes: altered } }, 'inclusion'],
      [{ ...good, proof: { ...p, hashes: p.hashes!.slice(1) } }, 'inclusion'],
      [{ ...good, proof: { ...p, leafIndex: '7' } }, 'leaf-mismatch'],
      [{ ...good, proof: { ...p, treeSize: '16' } }, 'inclusion'],
      [{ ...good, proof: { ...p, checkpoint: await checkpoint(16), treeSize: '16' } }, 'inclusion'],
      [{ ...good, proof: { ...p, checkpoint: await checkpoint(20, key()) } }, 'checkpoint'],
      [{ ...good, proof: { ...p, checkpoint: p.checkpoint!.replace('\n20\n', '\n21\n') } }, 'checkpoint'],
      [{ ...good, proof: { ...p, leaf: 'not base64!' } }, 'proof-malformed'],
    ];
    for (const [r, code] of cases) {
      const v = await verifyRecord(r, trust);
      expect(v.status).toBe('failed');
      expect(v.code, v.reason).toBe(code);
    }
  });

  it('fails every record under another log key', async () => {
    const other = await trustedKeys([verifierKey(ORIGIN, SIG_ED25519, rawEd25519(key().publicKey))]);
    const v = await verifyRecord(await recordJson(4, N), other);
    expect(v).toMatchObject({ status: 'failed', code: 'checkpoint' });
  });
});

describe('checkpoints and cosignatures', () => {
  it('names the witnesses whose cosignatures verify, ignores unknown ones, and refuses a bad one', async () => {
    const cp = await checkpoint(N);
    const { text } = parseNote(cp);
    const cosigned = cp + (await cosign(text, WITNESS, witnessKey, 1_790_000_000));
    expect((await openCheckpoint(cosigned, trust)).witnesses).toEqual([WITNESS]);
    expect((await openCheckpoint(cp, trust)).witnesses).toEqual([]);
    const stranger = cp + (await cosign(text, 'witness.example/other', key(), 1));
    expect((await openCheckpoint(stranger, trust)).witnesses).toEqual([]);
    const forged = cp + (await cosign(text.replace(`\n${N}\n`, `\n${N + 1}\n`), WITNESS, witnessKey, 1));
    await expect(openCheckpoint(forged, trust)).rejects.toThrow(/does not verify/);
    const v = await verifyRecord({ ...(await recordJson(3, N)), proof: { ...(await recordJson(3, N)).proof!, checkpoint: cosigned } }, trust);
    expect(v.status).toBe('verified');
    expect(v.checkpoint!.witnesses).toEqual([WITNESS]);
  });
});

describe('consistency between checkpoints', () => {
  it('accepts the core proofs between every pair of sizes', async () => {
    const sizes = [0, 1, 2, 3, 5, 8, 16, 20, 31, N];
    for (const a of sizes)
      for (const b of sizes)
        if (a <= b) {
          const proof = await consistencyProof(a, b, source);
          const v = await checkConsistency(a, b, proof, rootOfLeafHashes(hashes.slice(0, a)), rootOfLeafHashes(hashes.slice(0, b)));
          expect(v, `${a} → ${b}`).toEqual({ ok: true });
        }
  });

  it('flags a fork and a rollback', async () => {
    const forked = [...hashes];
    forked[2] = leafHash(Buffer.from('rewritten'));
    const oldForked = rootOfLeafHashes(forked.slice(0, 20));
    const proof = await consistencyProof(20, N, source);
    expect(await checkConsistency(20, N, proof, oldForked, rootOfLeafHashes(hashes))).toMatchObject({ ok: false, kind: 'forked' });
    expect(await checkConsistency(20, 20, [], oldForked, rootOfLeafHashes(hashes.slice(0, 20)))).toMatchObject({ ok: false, kind: 'forked' });
    expect(await checkConsistency(N, 20, [], rootOfLeafHashes(hashes), rootOfLeafHashes(hashes.slice(0, 20)))).toMatchObject({ ok: false, kind: 'rolled-back' });
    expect((await checkConsistency(5, 20, [], rootOfLeafHashes(hashes.slice(0, 5)), rootOfLeafHashes(hashes.slice(0, 20)))).ok).toBe(false);
  });
});
