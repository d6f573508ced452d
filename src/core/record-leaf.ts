/**
 * The canonical leaf of an access record: the exact bytes the transparency log hashes (leaf hash =
 * SHA-256(0x00 ‖ leaf)). Every field of the record is in it, in a fixed order, length-prefixed, so that two
 * different records can never encode alike. The reference for other implementations is docs/transparency.md.
 *
 * The person is in the leaf only as a commitment: SHA-256 over the record id and the subject key(s). The subject
 * key is the same for a person across all agencies, so handing it to a requester and a provider would let them
 * link their files; the commitment differs for every record (the record id is random) and cannot be opened
 * without the subject key, which only the gateway can compute. The gateway and an auditor with the store
 * recompute it from the stored subject key(s); a party verifies the leaf with the commitment it is given.
 */
import { createHash } from 'node:crypto';
import type { Outcome } from './access-record.js';

export const LEAF_LABEL = 'linkgw/access-record/v1\n';
const SUBJECT_LABEL = 'linkgw/record-subject/v1\n';
const SUBJECTS_LABEL = 'linkgw/record-subjects/v1\n';

/** Whom a record is about: one person (the subject key in the record) or the persons of a batch record. */
export const Persons = { ONE: 1, BATCH: 2 } as const;
export type Persons = (typeof Persons)[keyof typeof Persons];

/** The fields of a record as the leaf holds them. */
export interface LeafFields {
  readonly recordId: string;
  readonly requestedAt: number;
  readonly providedAt: number | null;
  readonly requester: string;
  readonly provider: string;
  readonly procedure: string;
  readonly legalBasisRow: string;
  readonly item: string;
  readonly outcome: Outcome;
  readonly nonDisclosable: boolean;
  readonly persons: Persons;
  /** 32 bytes: `subjectCommitment` or `subjectsCommitment`. */
  readonly subjectsCommitment: Uint8Array;
}

function opaque16(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 0xffff) throw new RangeError('a leaf field is at most 65,535 bytes');
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function u64(n: number, what: string): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what}: a whole number ≥ 0`);
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}

/** The commitment to the one person a record is about. */
export function subjectCommitment(recordId: string, subject: string): Buffer {
  return createHash('sha256').update(SUBJECT_LABEL).update(opaque16(recordId)).update(opaque16(subject)).digest();
}

/**
 * The commitment to the persons of a batch record (in any order: they are sorted by byte value). Each subject
 * key is length-prefixed, so the sequence needs no count and can be hashed as it streams.
 */
export function subjectsCommitment(recordId: string, subjects: readonly string[]): Buffer {
  const h = createHash('sha256').update(SUBJECTS_LABEL).update(opaque16(recordId));
  // Subject keys are ASCII, where the default sort is byte order already; anything else sorts by its bytes.
  const sorted = subjects.every((s) => /^[\x00-\x7f]*$/.test(s)) ? [...subjects].sort() : [...subjects].sort(byBytes);
  for (const s of sorted) h.update(opaque16(s));
  return h.digest();
}

/** Byte order of the UTF-8 encodings (code-point order; JavaScript's default sort is UTF-16 code units). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The canonical leaf bytes of record `leafIndex` of the log named `origin`. */
export function encodeRecordLeaf(origin: string, leafIndex: number, r: LeafFields): Buffer {
  if (r.subjectsCommitment.length !== 32) throw new RangeError('the subjects commitment is 32 bytes');
  if (r.persons !== Persons.ONE && r.persons !== Persons.BATCH) throw new RangeError('persons: one or batch');
  if (!Number.isInteger(r.outcome) || r.outcome < 0 || r.outcome > 255) throw new RangeError('outcome: one byte');
  return Buffer.concat([
    Buffer.from(LEAF_LABEL, 'utf8'),
    opaque16(origin),
    u64(leafIndex, 'leaf index'),
    opaque16(r.recordId),
    u64(r.requestedAt, 'requested at'),
    Buffer.from([r.providedAt === null ? 0 : 1]),
    u64(r.providedAt ?? 0, 'provided at'),
    opaque16(r.requester),
    opaque16(r.provider),
    opaque16(r.procedure),
    opaque16(r.legalBasisRow),
    opaque16(r.item),
    Buffer.from([r.outcome, r.nonDisclosable ? 1 : 0, r.persons]),
    r.subjectsCommitment,
  ]);
}

/** Reads canonical leaf bytes back (for verifiers and tests); throws RangeError on anything malformed. */
export function decodeRecordLeaf(leaf: Uint8Array): { origin: string; leafIndex: number; fields: LeafFields } {
  const b = Buffer.from(leaf.buffer, leaf.byteOffset, leaf.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > b.length) throw new RangeError('leaf: truncated');
  };
  const str = () => {
    need(2);
    const n = b.readUInt16BE(at);
    at += 2;
    need(n);
    const s = b.toString('utf8', at, at + n);
    if (Buffer.byteLength(s) !== n) throw new RangeError('leaf: not UTF-8');
    at += n;
    return s;
  };
  const num = () => {
    need(8);
    const v = b.readBigUInt64BE(at);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('leaf: number too large');
    return Number(v);
  };
  const byte = () => {
    need(1);
    return b[at++]!;
  };
  need(LEAF_LABEL.length);
  if (b.toString('utf8', 0, LEAF_LABEL.length) !== LEAF_LABEL) throw new RangeError('leaf: not a linkgw access record v1');
  at = LEAF_LABEL.length;
  const origin = str();
  const leafIndex = num();
  const recordId = str();
  const requestedAt = num();
  const hasProvided = byte();
  const providedRaw = num();
  if (hasProvided > 1 || (hasProvided === 0 && providedRaw !== 0)) throw new RangeError('leaf: malformed provided-at');
  const requester = str();
  const provider = str();
  const procedure = str();
  const legalBasisRow = str();
  const item = str();
  const outcome = byte() as Outcome;
  const nd = byte();
  const persons = byte();
  if (nd > 1 || (persons !== Persons.ONE && persons !== Persons.BATCH)) throw new RangeError('leaf: malformed flags');
  need(32);
  const subjectsCommitment = Buffer.from(b.subarray(at, at + 32));
  at += 32;
  if (at !== b.length) throw new RangeError('leaf: trailing bytes');
  return {
    origin,
    leafIndex,
    fields: {
      recordId,
      requestedAt,
      providedAt: hasProvided ? providedRaw : null,
      requester,
      provider,
      procedure,
      legalBasisRow,
      item,
      outcome,
      nonDisclosable: nd === 1,
      persons: persons as Persons,
      subjectsCommitment,
    },
  };
}
