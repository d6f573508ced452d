/**
 * What the record writer, the services and verification need of a record store. Two implementations: SQLite
 * (embedded default, in its own worker thread) and PostgreSQL. Errors from a store are plain errors, with a
 * `code` for the two a writer must tell apart (LOG_LOCKED, LOG_CONFLICT); the writer and services turn them
 * into statuses.
 *
 * Each log has one writer: `claimLog` takes a lock that lives as long as the store (a PostgreSQL session
 * advisory lock, or an exclusive lock on a small lock file next to the SQLite file), and every append is a
 * compare-and-set on the log's size, so even a second writer that got past the lock could not fork the log.
 */
import type { LoggedRecord, LoggedRecordWithSubjects } from '../core/access-record.js';
import type { NodeId } from '../core/merkle.js';
import type { LogInfo, StoredCheckpoint, StoredPurge } from './schema.js';

export type { LogInfo, StoredCheckpoint, StoredPurge } from './schema.js';

export interface RecordQuery {
  readonly subject: string;
  /** Inclusive lower bound on requestedAt, ms. */
  readonly from: number | null;
  /** Exclusive upper bound on requestedAt, ms. */
  readonly to: number | null;
  /** Read on strictly after (older than) this position. */
  readonly after: RecordCursor | null;
  readonly limit: number;
}

export interface RecordCursor {
  readonly requestedAt: number;
  readonly logId: string;
  readonly leafIndex: number;
}

export interface ExchangeQuery {
  readonly subject: string;
  readonly agency: string;
  /** ms since the epoch, or null for no lower bound. */
  readonly since: number | null;
  readonly limit: number;
}

/** Another process holds the log's writer lock. */
export const LOG_LOCKED = 'LOG_LOCKED';
/** The log's stored size is not the one the append started from: someone else wrote it. */
export const LOG_CONFLICT = 'LOG_CONFLICT';

export function storeError(code: typeof LOG_LOCKED | typeof LOG_CONFLICT, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The state a writer resumes from, read while holding the log's lock. */
export interface ClaimedLog {
  readonly logId: string;
  readonly origin: string;
  readonly size: number;
  /** The hashes of the tree's right edge (`CompactRange.nodesFor(size)`, in that order). */
  readonly edge: Buffer[];
  /** The latest checkpoint the log signed, and when the last one kept in the history was made. */
  readonly latest: StoredCheckpoint | null;
  readonly lastKeptAt: number | null;
}

/** A record to append, its leaf hash packed with the batch's others (one buffer crosses threads cheaply). */
export type PendingRecord = Omit<LoggedRecordWithSubjects, 'leafHash'>;

/** Complete internal nodes (level ≥ 1) of a batch, as parallel arrays and one buffer of 32-byte hashes. */
export interface PackedNodes {
  readonly levels: number[];
  readonly indexes: number[];
  readonly hashes: Buffer;
}

export interface NewCheckpoint {
  readonly size: number;
  readonly rootHash: Buffer;
  readonly signedNote: string;
  readonly createdAt: number;
  /** Keep it in the history (first of its hour). */
  readonly kept: boolean;
  /** The size of the latest checkpoint before it, removed now unless it was kept; null for the first. */
  readonly replaces: number | null;
}

/**
 * One durable transaction: the records as leaves [fromSize, fromSize + n), the nodes they complete, the log's
 * new size, and a checkpoint to store if one was signed meanwhile. Fails with LOG_CONFLICT, changing nothing,
 * when the stored size is not `fromSize`.
 */
export interface LogAppend {
  readonly logId: string;
  readonly fromSize: number;
  readonly records: readonly PendingRecord[];
  /** n × 32 bytes: the records' leaf hashes in order. */
  readonly leafHashes: Buffer;
  readonly nodes: PackedNodes;
  readonly checkpoint?: NewCheckpoint;
}

/** The persons stored for a log's records: a commitment per batch record, and any stored for a record of one. */
export interface StoredPersons {
  readonly batch: Map<string, { commitment: Buffer; persons: number }>;
  /** Records of one person for which persons are stored in the side table (no writer does that). */
  readonly strays: Set<string>;
}

/** The persons stored for one record (a batch record's, or persons wrongly added to a record of one). */
export interface RecordPersons {
  readonly recordId: string;
  /** `subjectsCommitment` of the persons stored for it. */
  readonly commitment: Buffer;
  /** The record has a subject of its own: no persons should be stored for it. */
  readonly stray: boolean;
  /** How many persons are stored for it. */
  readonly count: number;
}

/**
 * Reads that all see one state of the store (a REPEATABLE READ transaction on PostgreSQL, a read transaction
 * on SQLite): verification and purge read records, nodes, checkpoints and purges that agree with each other
 * while the gateway keeps writing.
 */
export interface SnapshotReader {
  logs(): Promise<LogInfo[]>;
  checkpoints(logId: string): Promise<StoredCheckpoint[]>;
  /** A log's purges, by leaf. */
  purges(logId: string): Promise<StoredPurge[]>;
  nodes(logId: string, ids: readonly NodeId[]): Promise<Buffer[]>;
  readLeaves(logId: string, from: number, to: number, limit: number): Promise<LoggedRecord[]>;
  /**
   * The persons stored for the records of a log with leaf index in [from, to), by leaf index. Called with
   * consecutive ranges of one log (a stream: only one range is held at a time).
   */
  persons(logId: string, from: number, to: number): Promise<Map<number, RecordPersons>>;
  /** The first leaf at or after `from` whose record was requested at or after `time`, or null. */
  firstLeafFrom(logId: string, from: number, time: number): Promise<number | null>;
}

/** A purge to commit: its row, and the records of leaves [0, belowLeaf) with their persons deleted. */
export interface NewPurge {
  readonly logId: string;
  readonly belowLeaf: number;
  readonly rootHash: Buffer;
  readonly frontier: readonly Buffer[];
  readonly signedNote: string;
  readonly purgedAt: number;
  readonly before: number;
}

export interface PurgeResult {
  readonly records: number;
  readonly persons: number;
}

export interface FinishedPurge {
  /** Monthly partitions dropped whole. */
  readonly partitionsDropped: readonly string[];
  /** Records below a purge point deleted row by row (months that could not be dropped). */
  readonly recordsDeleted: number;
}

export interface RecordStore {
  readonly kind: 'sqlite' | 'postgres';

  // The writer's side.
  /** Takes the log's writer lock (waiting up to `waitMs`), creating the log on first use; its state. */
  claimLog(logId: string, origin: string, opts?: { waitMs?: number }): Promise<ClaimedLog>;
  append(a: LogAppend): Promise<void>;
  /**
   * A cheap real check that the store is there and answers (one read; for SQLite, also that its files are still
   * the ones it opened). The writer runs it while idle, so that readiness tells the truth before traffic comes.
   * Fails with STORE_GONE (store-errors.ts) when the store was removed or replaced.
   */
  check(): Promise<void>;
  /**
   * Resolves once every persons run committed so far by this store is merged into the person index (ADR 0104):
   * for tests, benchmarks and a clean shutdown; lookups are right before it too (they read the runs not merged).
   */
  flushIndex(): Promise<void>;
  /** Persons in runs this store wrote that are not merged into the index yet, as last known (a gauge). */
  personIndexBacklog(): number;
  /** Adds witness cosignature lines to a stored checkpoint; false when that checkpoint is no longer stored. */
  addCosignatures(logId: string, size: number, lines: string): Promise<boolean>;

  // Reading.
  logs(): Promise<LogInfo[]>;
  /** The latest checkpoint of every log. */
  latestCheckpoints(): Promise<StoredCheckpoint[]>;
  /** A log's stored checkpoints, by size. */
  checkpoints(logId: string): Promise<StoredCheckpoint[]>;
  /** Hashes of perfect subtrees of a log (level 0: leaf hashes); throws if one is not stored. */
  nodes(logId: string, ids: readonly NodeId[]): Promise<Buffer[]>;
  recordById(recordId: string): Promise<LoggedRecord | null>;
  /** Records of a log with leaf index in [from, to), in order, at most `limit`. */
  readLeaves(logId: string, from: number, to: number, limit: number): Promise<LoggedRecord[]>;
  /**
   * The persons stored for the batch records of one log (or of all logs), as commitments: one pass over the
   * persons table, grouped by record. Verification reads them once for the whole store (the table has no index
   * by record, which would slow bulk issuance).
   */
  storedPersons(logId?: string): Promise<StoredPersons>;
  /** Disclosable records of a subject (its own and the batch records naming it), newest first. */
  listBySubject(q: RecordQuery): Promise<LoggedRecord[]>;
  /**
   * Exchanges about a subject in which data was released (PROVIDED) with `agency` as requester or provider,
   * requested at or after `since`, newest first; non-disclosable ones too (the agency was party to them).
   */
  exchangesOf(q: ExchangeQuery): Promise<LoggedRecord[]>;
  /** Runs `fn` with reads of one consistent state of the store (see SnapshotReader). */
  readSnapshot<T>(fn: (r: SnapshotReader) => Promise<T>): Promise<T>;
  /**
   * One transaction: stores the purge row and deletes the log's records below `belowLeaf` and their persons
   * (one statement per table). Null, changing nothing, when a purge at that leaf is already stored.
   */
  purge(p: NewPurge): Promise<PurgeResult | null>;
  /**
   * After the purges of a run (PostgreSQL's monthly partitions): drops each month older than `before` whose
   * every record lies below its log's purge point, and deletes what is left below the purge points. Absent on
   * a store that deletes everything in `purge`.
   */
  finishPurge?(before: number): Promise<FinishedPurge>;
  /** Releases the log locks this store holds and closes it. */
  close(): Promise<void>;
}
