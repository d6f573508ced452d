/**
 * The canonical leaf of an access record: fixed bytes for a fixed record (docs/transparency.md documents
 * them), every field changes the leaf, the person is in it only as a per-record commitment, and it decodes back.
 */
import { describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { leafHash } from '../../src/core/merkle.js';
import { decodeRecordLeaf, encodeRecordLeaf, Persons, subjectCommitment, subjectsCommitment, type LeafFields } from '../../src/core/record-leaf.js';

const ORIGIN = 'linkgw/records/replica-a';
const SUBJECT = '5ZK0W8A1DQ3J9PRS7TV2XYBC4M';
const base: LeafFields = {
  recordId: '0123456789ABCDEFGHJKMNPQ',
  requestedAt: 1_790_000_000_000,
  providedAt: 1_790_000_000_123,
  requester: 'pension',
  provider: 'tax',
  procedure: 'pension.eligibility',
  legalBasisRow: 'B2-001',
  item: 'income',
  outcome: Outcome.PROVIDED,
  nonDisclosable: false,
  persons: Persons.ONE,
  subjectsCommitment: subjectCommitment('0123456789ABCDEFGHJKMNPQ', SUBJECT),
};

describe('the record leaf', () => {
  it('has the documented layout', () => {
    const leaf = encodeRecordLeaf(ORIGIN, 5, base);
    const expected = Buffer.concat([
      Buffer.from('linkgw/access-record/v1\n'),
      Buffer.from([0, ORIGIN.length]), Buffer.from(ORIGIN),
      Buffer.from('0000000000000005', 'hex'),
      Buffer.from([0, 24]), Buffer.from(base.recordId),
      Buffer.from('000001a0c4506c00', 'hex'), // 1,790,000,000,000 ms
      Buffer.from([1]), Buffer.from('000001a0c4506c7b', 'hex'),
      Buffer.from([0, 7]), Buffer.from('pension'),
      Buffer.from([0, 3]), Buffer.from('tax'),
      Buffer.from([0, 19]), Buffer.from('pension.eligibility'),
      Buffer.from([0, 6]), Buffer.from('B2-001'),
      Buffer.from([0, 6]), Buffer.from('income'),
      Buffer.from([2, 0, 1]),
      base.subjectsCommitment,
    ]);
    expect(leaf.toString('hex')).toBe(expected.toString('hex'));
    // A pinned answer, so that any change to the encoding shows (docs/transparency.md has the same example).
    expect(subjectCommitment(base.recordId, SUBJECT).toString('hex')).toBe('724f81faad4bbb418c9330f5b830906f9ce1c9360c3438abc20933f6c8b848bd');
    expect(leafHash(leaf).toString('hex')).toBe('53ca659871db71697d37bd830c2b2cce41b3dea65b9d06a6e66d3e2f8223c340');
  });

  it('changes with every field, the log and the position', () => {
    const h = (origin: string, i: number, f: LeafFields) => leafHash(encodeRecordLeaf(origin, i, f)).toString('hex');
    const seen = new Set([h(ORIGIN, 5, base)]);
    const variants: [string, number, LeafFields][] = [
      ['linkgw/records/replica-b', 5, base],
      [ORIGIN, 6, base],
      [ORIGIN, 5, { ...base, recordId: '0123456789ABCDEFGHJKMNPR' }],
      [ORIGIN, 5, { ...base, requestedAt: base.requestedAt + 1 }],
      [ORIGIN, 5, { ...base, providedAt: null }],
      [ORIGIN, 5, { ...base, providedAt: 0 }],
      [ORIGIN, 5, { ...base, requester: 'welfare' }],
      [ORIGIN, 5, { ...base, provider: 'taxes' }],
      [ORIGIN, 5, { ...base, procedure: 'pension.eligibility2' }],
      [ORIGIN, 5, { ...base, legalBasisRow: 'B2-002' }],
      [ORIGIN, 5, { ...base, item: 'income2' }],
      [ORIGIN, 5, { ...base, outcome: Outcome.DENIED }],
      [ORIGIN, 5, { ...base, nonDisclosable: true }],
      [ORIGIN, 5, { ...base, persons: Persons.BATCH }],
      [ORIGIN, 5, { ...base, subjectsCommitment: subjectCommitment(base.recordId, 'ANOTHERPERSONKEY0000000000') }],
      // Moving bytes between neighbouring fields is not the same record.
      [ORIGIN, 5, { ...base, requester: 'pensiont', provider: 'ax' }],
    ];
    for (const [o, i, f] of variants) {
      const x = h(o, i, f);
      expect(seen.has(x), JSON.stringify([o, i, f])).toBe(false);
      seen.add(x);
    }
  });

  it('commits to the person per record, and to a batch record\'s persons in any order', () => {
    expect(subjectCommitment('R1', SUBJECT)).not.toEqual(subjectCommitment('R2', SUBJECT));
    expect(subjectsCommitment('R1', ['A', 'B', 'C'])).toEqual(subjectsCommitment('R1', ['C', 'A', 'B']));
    expect(subjectsCommitment('R1', ['A', 'B'])).not.toEqual(subjectsCommitment('R1', ['A', 'B', 'C']));
    expect(subjectsCommitment('R1', ['A'])).not.toEqual(subjectCommitment('R1', 'A'));
    expect(subjectsCommitment('R1', ['AB', 'C'])).not.toEqual(subjectsCommitment('R1', ['A', 'BC']));
  });

  it('decodes back, and refuses truncated or padded bytes', () => {
    const leaf = encodeRecordLeaf(ORIGIN, 2 ** 40, { ...base, providedAt: null, nonDisclosable: true });
    expect(decodeRecordLeaf(leaf)).toEqual({ origin: ORIGIN, leafIndex: 2 ** 40, fields: { ...base, providedAt: null, nonDisclosable: true } });
    expect(() => decodeRecordLeaf(leaf.subarray(0, -1))).toThrow(/truncated/);
    expect(() => decodeRecordLeaf(Buffer.concat([leaf, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => decodeRecordLeaf(Buffer.from('linkgw/access-record/v2\n'))).toThrow(/not a linkgw/);
  });

  it('of a NOT_RELEASED record goes on with the id of the record it corrects, and only that outcome does', () => {
    const corrects = 'ZYXWVTSRQPNMKJHGFEDCBA98';
    const fields: LeafFields = { ...base, providedAt: null, outcome: Outcome.NOT_RELEASED, correctsRecordId: corrects };
    const leaf = encodeRecordLeaf(ORIGIN, 6, fields);
    const plain = encodeRecordLeaf(ORIGIN, 6, { ...fields, outcome: Outcome.FAILED, correctsRecordId: undefined });
    // The same bytes as any record, with outcome 8, then opaque16(corrects_record_id).
    expect(leaf.subarray(0, plain.length - 32 - 3)).toEqual(plain.subarray(0, plain.length - 32 - 3));
    expect(leaf.subarray(plain.length)).toEqual(Buffer.concat([Buffer.from([0, 24]), Buffer.from(corrects)]));
    expect(decodeRecordLeaf(leaf).fields).toEqual(fields);
    expect(leafHash(leaf)).not.toEqual(leafHash(encodeRecordLeaf(ORIGIN, 6, { ...fields, correctsRecordId: base.recordId })));
    expect(() => encodeRecordLeaf(ORIGIN, 6, { ...fields, correctsRecordId: undefined })).toThrow(/NOT_RELEASED/);
    expect(() => encodeRecordLeaf(ORIGIN, 6, { ...base, correctsRecordId: corrects })).toThrow(/NOT_RELEASED/);
    expect(() => decodeRecordLeaf(leaf.subarray(0, plain.length))).toThrow(/truncated/);
  });
});
