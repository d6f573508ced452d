/**
 * Access records (情報提供等記録, 番号法 §23), each one leaf of its replica's transparency log.
 *
 * A replica appends its records to one Merkle log for its whole life (named by LINKGW_REPLICA_ID); the leaf is
 * the record's canonical encoding (record-leaf.ts, docs/transparency.md) and the log signs C2SP checkpoints of
 * its size and root. Changing, deleting, inserting or moving a record changes a leaf hash and every root above
 * it, and so contradicts a signed checkpoint; docs/adr/0100-transparency-log-replaces-chains.md says why
 * the log replaced the hash chains and per-batch seals of earlier versions.
 */
import { runCommitment, type PersonsRun } from './persons-run.js';
import { encodeRecordLeaf, Persons, recordLeafHash, subjectCommitment, subjectsCommitment, type LeafFields } from './record-leaf.js';

/** Mirrors linkage.v1.Outcome. */
export const Outcome = {
  ISSUED: 1,
  PROVIDED: 2,
  DENIED: 3,
  NOT_FOUND: 4,
  FAILED: 5,
  RECORDS_READ: 6,
  BINDING_REPORTED: 7,
  /**
   * The record named by `correctsRecordId` landed only after its request had failed (its commit stalled past the
   * record timeout): whatever it says was released (data, a code, records) never reached the requester.
   */
  NOT_RELEASED: 8,
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface AccessRecordDraft {
  readonly recordId: string;
  /** Subject key: neither the personal number nor any agency's code (see subject-key.ts). */
  readonly subject: string;
  /** Milliseconds since the epoch. */
  readonly requestedAt: number;
  readonly providedAt: number | null;
  readonly requester: string;
  readonly provider: string;
  readonly procedure: string;
  readonly legalBasisRow: string;
  readonly item: string;
  readonly outcome: Outcome;
  readonly nonDisclosable: boolean;
  /**
   * A batch record (bulk issuance) stands for many persons: their subject keys as one sorted run
   * (persons-run.ts), stored with the record and indexed behind the commit, and `subject` is empty. The leaf
   * commits to all of them, so a person removed or added shows.
   */
  readonly persons?: PersonsRun;
  /** `runCommitment(recordId, persons)`, when the caller computed it already (off the event loop). */
  readonly personsCommitment?: Buffer;
  /** A NOT_RELEASED record: the id of the record it corrects (absent on every other record). */
  readonly correctsRecordId?: string;
}

/** A record as stored: its log, its position in it, its leaf hash, and a batch record's persons commitment. */
export interface LoggedRecord extends Omit<AccessRecordDraft, 'persons' | 'personsCommitment'> {
  readonly logId: string;
  readonly leafIndex: number;
  readonly leafHash: Buffer;
  /**
   * The commitment to a batch record's persons (what its leaf holds), kept with the record so that its leaf
   * can be rebuilt from the row alone (a proof for a party); null for a record of one person, whose
   * commitment follows from its subject key.
   */
  readonly personsCommitment: Buffer | null;
}

/** A record on its way to the store, with the persons run of a batch record. */
export interface LoggedRecordWithSubjects extends LoggedRecord {
  readonly persons?: PersonsRun;
}

/**
 * The leaf fields of a new record. A batch record (no subject of its own) commits to its persons run, or to the
 * commitment given for it (computed from the same run off the event loop).
 */
export function leafFieldsOf(r: Omit<AccessRecordDraft, 'persons' | 'personsCommitment'>, persons: PersonsRun | undefined, commitment?: Buffer): LeafFields {
  const batch = persons !== undefined || r.subject === '';
  return {
    recordId: r.recordId,
    requestedAt: r.requestedAt,
    providedAt: r.providedAt,
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    legalBasisRow: r.legalBasisRow,
    item: r.item,
    outcome: r.outcome,
    nonDisclosable: r.nonDisclosable,
    persons: batch ? Persons.BATCH : Persons.ONE,
    subjectsCommitment: batch ? (commitment ?? runCommitment(r.recordId, persons ?? new Uint8Array(0))) : subjectCommitment(r.recordId, r.subject),
    ...(r.correctsRecordId ? { correctsRecordId: r.correctsRecordId } : {}),
  };
}

/**
 * The record that follows one which landed after its request had failed: the same exchange (requester,
 * provider, procedure, item, row, persons, disclosability, and its requested-at, so that it is listed right
 * before it, newest first), outcome NOT_RELEASED, nothing provided, and the id of the record it corrects.
 */
export function notReleasedRecord(recordId: string, landed: AccessRecordDraft): AccessRecordDraft {
  return {
    recordId,
    subject: landed.subject,
    requestedAt: landed.requestedAt,
    providedAt: null,
    requester: landed.requester,
    provider: landed.provider,
    procedure: landed.procedure,
    legalBasisRow: landed.legalBasisRow,
    item: landed.item,
    outcome: Outcome.NOT_RELEASED,
    nonDisclosable: landed.nonDisclosable,
    // The same persons; their commitment is this record's own (it covers the record id).
    ...(landed.persons ? { persons: landed.persons } : {}),
    correctsRecordId: landed.recordId,
  };
}

/** The leaf fields of a stored record, from its row alone. */
export function storedLeafFields(r: LoggedRecord): LeafFields {
  if (r.subject !== '') return leafFieldsOf(r, undefined);
  return { ...leafFieldsOf(r, new Uint8Array(0)), subjectsCommitment: r.personsCommitment ?? subjectsCommitment(r.recordId, []) };
}

/** The canonical leaf bytes of a stored record in the log `origin`. */
export function storedRecordLeaf(origin: string, r: LoggedRecord): Buffer {
  return encodeRecordLeaf(origin, r.leafIndex, storedLeafFields(r));
}

/** The leaf hash of a stored record in the log `origin`. */
export function storedRecordLeafHash(origin: string, r: LoggedRecord): Buffer {
  return recordLeafHash(origin, r.leafIndex, storedLeafFields(r));
}

/** The canonical leaf bytes of a record at `leafIndex` of the log `origin`. */
export function recordLeaf(origin: string, leafIndex: number, r: Omit<AccessRecordDraft, 'persons' | 'personsCommitment'>, persons: PersonsRun | undefined): Buffer {
  return encodeRecordLeaf(origin, leafIndex, leafFieldsOf(r, persons));
}
