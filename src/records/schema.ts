/**
 * The record tables' rows, shared by both stores (the tables themselves are made by the numbered steps of
 * migrations.ts; hashes are BLOB in SQLite, BYTEA in PostgreSQL). Times are milliseconds since the epoch. No column holds a personal
 * number or an agency code: `subject` is the subject key (AES under a key of the gateway's: docs/threat-model.md).
 *
 * A log is one replica's Merkle tree: its records are its leaves (`leaf_index` from 0, `leaf_hash` the RFC 6962
 * leaf hash of the record's canonical encoding), `log_nodes` holds every complete node of level 3 and up (one
 * row per 8 records, about; a node of level 1 or 2 is folded from its 2 or 4 leaf hashes, one range probe),
 * so that any proof takes a few index probes, and `log_checkpoints` the checkpoints it signed: the latest, and the
 * first of each hour (a checkpoint a second for years would be 30 million rows a year; the hourly ones keep the
 * log's history checkable and the latest is what clients need).
 */
import type { LoggedRecord, Outcome } from '../core/access-record.js';

/**
 * The lowest level of tree node stored. Storing every node would be one more row per record in the same
 * transaction; from level 3 it is one per 8, and the lower ones cost a proof at most two range probes.
 */
export const LOWEST_STORED_LEVEL = 3;

/** Leaves a node of a level below LOWEST_STORED_LEVEL is folded from: [first, first + 2^level). */
export function leavesUnder(level: number, index: number): { first: number; count: number } {
  return { first: index * 2 ** level, count: 2 ** level };
}

export const RECORD_COLUMNS = [
  'log_id',
  'leaf_index',
  'record_id',
  'subject',
  'requested_at',
  'provided_at',
  'requester',
  'provider',
  'procedure',
  'legal_basis_row',
  'item',
  'outcome',
  'non_disclosable',
  'persons_commitment',
  'leaf_hash',
  'corrects_record_id',
] as const;

/** A store written by linkgw before the transparency log (hash chains and seals) is not read by this one. */
export const OLD_LAYOUT_MESSAGE =
  'this record store holds hash-chained records of an earlier linkgw (table access_records has chain_id); verify them with that version, then start a new store or schema for the transparency log';

/** A checkpoint the log signed, with the witness cosignature lines received for it. */
export interface StoredCheckpoint {
  readonly logId: string;
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** The signed note as the log signed it. */
  readonly signedNote: string;
  /** Witness cosignature lines (each `— name base64\n`), in the order received. */
  readonly cosignatures: string;
  readonly createdAt: number;
  /** Kept in the history (the first of its hour); otherwise replaced by the next one. */
  readonly kept: boolean;
}

/** The signed note with the witnesses' cosignatures appended: what clients are served. */
export function cosignedNote(c: Pick<StoredCheckpoint, 'signedNote' | 'cosignatures'>): string {
  return c.signedNote + c.cosignatures;
}

export interface LogInfo {
  readonly logId: string;
  readonly origin: string;
  readonly size: number;
  /** The highest leaf index stored (read in the same statement as the size), or null. */
  readonly maxLeafIndex: number | null;
  readonly createdAt: number;
}

export interface RecordRow {
  log_id: string;
  leaf_index: number | string;
  record_id: string;
  subject: string;
  requested_at: number | string;
  provided_at: number | string | null;
  requester: string;
  provider: string;
  procedure: string;
  legal_basis_row: string;
  item: string;
  outcome: number;
  non_disclosable: number | boolean;
  persons_commitment: Uint8Array | null;
  leaf_hash: Uint8Array;
  corrects_record_id: string;
}

export function rowToRecord(r: RecordRow): LoggedRecord {
  return {
    logId: r.log_id,
    leafIndex: Number(r.leaf_index),
    recordId: r.record_id,
    subject: r.subject,
    requestedAt: Number(r.requested_at),
    providedAt: r.provided_at === null ? null : Number(r.provided_at),
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    legalBasisRow: r.legal_basis_row,
    item: r.item,
    outcome: r.outcome as Outcome,
    nonDisclosable: r.non_disclosable === true || r.non_disclosable === 1,
    leafHash: Buffer.from(r.leaf_hash),
    personsCommitment: r.persons_commitment === null ? null : Buffer.from(r.persons_commitment),
    ...(r.corrects_record_id ? { correctsRecordId: r.corrects_record_id } : {}),
  };
}

/** A record's column values in RECORD_COLUMNS order, its leaf hash given separately (batches pack them). */
export function recordToValues(r: Omit<LoggedRecord, 'leafHash'>, leafHash: Uint8Array): (string | number | null | Uint8Array)[] {
  // In RECORD_COLUMNS order.
  return [
    r.logId,
    r.leafIndex,
    r.recordId,
    r.subject,
    r.requestedAt,
    r.providedAt,
    r.requester,
    r.provider,
    r.procedure,
    r.legalBasisRow,
    r.item,
    r.outcome,
    r.nonDisclosable ? 1 : 0,
    r.personsCommitment,
    leafHash,
    r.correctsRecordId ?? '',
  ];
}

/** A purge of a log's records below `belowLeaf`, as stored (issue 12 item 6). */
export interface StoredPurge {
  readonly logId: string;
  readonly belowLeaf: number;
  readonly rootHash: Buffer;
  /** The compact range at `belowLeaf` (`CompactRange.nodesFor(belowLeaf)`), in that order. */
  readonly frontier: Buffer[];
  readonly signedNote: string;
  readonly purgedAt: number;
  readonly before: number;
}

export interface PurgeRow {
  log_id: string;
  below_leaf: number | string;
  root: Uint8Array;
  frontier: Uint8Array;
  signed_note: string;
  purged_at: number | string;
  before_time: number | string;
}

export function rowToPurge(r: PurgeRow): StoredPurge {
  const f = Buffer.from(r.frontier);
  return {
    logId: r.log_id,
    belowLeaf: Number(r.below_leaf),
    rootHash: Buffer.from(r.root),
    frontier: Array.from({ length: Math.floor(f.length / 32) }, (_, i) => f.subarray(i * 32, i * 32 + 32)),
    signedNote: r.signed_note,
    purgedAt: Number(r.purged_at),
    before: Number(r.before_time),
  };
}

export interface CheckpointRow {
  log_id: string;
  origin: string;
  size: number | string;
  root: Uint8Array;
  signed_note: string;
  cosignatures: string;
  created_at: number | string;
  kept: number | boolean;
}

export function rowToCheckpoint(r: CheckpointRow): StoredCheckpoint {
  return {
    logId: r.log_id,
    origin: r.origin,
    size: Number(r.size),
    rootHash: Buffer.from(r.root),
    signedNote: r.signed_note,
    cosignatures: r.cosignatures,
    createdAt: Number(r.created_at),
    kept: r.kept === true || r.kept === 1,
  };
}
