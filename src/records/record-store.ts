/**
 * What the record writer and the disclosure service need of a record store. Two implementations: SQLite
 * (embedded default, in its own worker thread) and PostgreSQL. Errors from a store are plain errors; the
 * writer and services turn them into statuses.
 */
import type { ChainedRecord, ChainedRecordWithSubjects, ChainLink, Seal } from '../core/access-record.js';

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
  readonly chainId: string;
  readonly seq: number;
}

export interface ExchangeQuery {
  readonly subject: string;
  readonly agency: string;
  /** ms since the epoch, or null for no lower bound. */
  readonly since: number | null;
  readonly limit: number;
}

export interface RecordStore {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Appends records (with the persons of batch records) and the seal over them in one durable transaction;
   * with `links`, a new chain's links to its predecessors in the same transaction (its first commit).
   */
  commit(records: readonly ChainedRecordWithSubjects[], seal: Seal, links?: readonly ChainLink[]): Promise<void>;
  /** The last sequence number and hash of a chain, or null for a chain with no records. */
  head(chainId: string): Promise<{ lastSeq: number; headHash: string } | null>;
  /**
   * The head of every chain with records that no chain has linked to yet, as links: what a new chain commits
   * to. (A head already linked is covered through the chain that linked it, so the links stay few.)
   */
  heads(): Promise<ChainLink[]>;
  /** Every chain's links to its predecessors, by chain id. */
  allLinks(): Promise<Map<string, ChainLink[]>>;
  /** Disclosable records of a subject (its own and the batch records naming it), newest first. */
  listBySubject(q: RecordQuery): Promise<ChainedRecord[]>;
  /**
   * Exchanges about a subject in which data was released (PROVIDED) with `agency` as requester or provider,
   * requested at or after `since`, newest first; non-disclosable ones too (the agency was party to them).
   */
  exchangesOf(q: ExchangeQuery): Promise<ChainedRecord[]>;
  chainIds(): Promise<string[]>;
  readChain(chainId: string): Promise<StoredChain>;
  close(): Promise<void>;
}

export interface StoredChain {
  readonly rows: ChainedRecord[];
  readonly seals: Seal[];
  /** The stored persons of the chain's records, by record id (batch records, and any tampering). */
  readonly subjects: Map<string, string[]>;
  /** The chain's links to its predecessors, as stored. */
  readonly links: ChainLink[];
}
