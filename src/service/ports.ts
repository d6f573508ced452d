/**
 * What the services need from the world outside them, as interfaces: the adapters (the record writer and
 * stores, the provider clients) implement these, and tests hand the services fakes. Services import no
 * gRPC, database or worker code.
 */
import type { AccessRecordDraft, LoggedRecord } from '../core/access-record.js';
import type { LatestCheckpoint, RecordInclusion } from '../records/log-proofs.js';
import type { ExchangeQuery, RecordQuery } from '../records/record-store.js';
import type { CallTrace, TraceHeaders } from '../tracing/call-trace.js';

/**
 * The call a record belongs to (a CallContext is one): its trace shows the wait (src/tracing/traced-records.ts),
 * and its signal stops the record when the call ends first (the client cancelled, or its deadline passed).
 */
export interface RecordCall {
  readonly trace?: CallTrace | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * The exchange has happened already (a provider answered with data): the record is committed even when the
   * call ends first, and if the call has ended by the time it lands, a NOT_RELEASED record follows it (the
   * answer is never sent). Without it, a record whose call ended before its commit is not committed at all.
   */
  readonly exchanged?: boolean;
}

/**
 * Appends access records; `append` resolves once the record is durable, and rejects otherwise: UNAVAILABLE when
 * it cannot be made durable, the call's own status (CANCELLED, DEADLINE_EXCEEDED) when the call ended first. A
 * record whose call ended before it was committed is never committed; one that landed after is followed by a
 * NOT_RELEASED record (src/records/record-writer.ts).
 */
export interface RecordAppender {
  append(draft: AccessRecordDraft, call?: RecordCall): Promise<void>;
}

/** Reads access records (the disclosure view, proofs by record id, and wrong-binding reports). */
export interface RecordReader {
  listBySubject(q: RecordQuery): Promise<LoggedRecord[]>;
  exchangesOf(q: ExchangeQuery): Promise<LoggedRecord[]>;
  recordById(recordId: string): Promise<LoggedRecord | null>;
}

/** The transparency log's checkpoints and proofs (docs/transparency.md). */
export interface RecordProofs {
  /** The latest checkpoint of every log. */
  latest(): Promise<LatestCheckpoint[]>;
  /** The consistency proof between two sizes of a log, both at most its latest checkpoint's. */
  consistency(logId: string, size1: number, size2: number): Promise<Uint8Array[]>;
  /** Each record's inclusion proof at its log's latest checkpoint; null for one newer than it. */
  ofRecords(records: readonly LoggedRecord[]): Promise<(RecordInclusion | null)[]>;
}

/** Who the server at a provider's address must prove to be: its certificate's subject common name. */
export interface ExpectedPeer {
  readonly commonName: string;
}

/** One InformationProvider.Provide call, as the gateway makes it. */
export interface ProvideCall {
  /** The providing agency's id: its in-flight budget and circuit breaker are its own. */
  readonly provider: string;
  readonly address: string;
  /** The provider the server at `address` must prove to be. */
  readonly peer: ExpectedPeer;
  readonly code: string;
  readonly requester: string;
  readonly procedure: string;
  readonly item: string;
  readonly recordId: string;
  readonly legalBasisRow: string;
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
  /** Aborts when the requester goes away: the provider call is cancelled with it. */
  readonly signal?: AbortSignal;
  /** The W3C trace context the call carries to the provider (traceparent, tracestate metadata). */
  readonly trace?: TraceHeaders;
}

export type ProvideResult =
  | { kind: 'provided'; payload: Uint8Array; contentType: string }
  | { kind: 'not-found' }
  | { kind: 'failed'; code: 'UNAVAILABLE' | 'DEADLINE_EXCEEDED' | 'INTERNAL'; grpcStatus: number }
  /**
   * Not called at all: the provider has its budget of calls in flight ('busy'), or its circuit breaker is open
   * because it stopped answering ('down'). `grpcStatus` is the status the requester gets.
   */
  | { kind: 'refused'; reason: 'busy' | 'down'; retryAfterMs: number; grpcStatus: number };

/** Calls providing agencies. Never throws: every failure is a `failed` or `refused` result. */
export interface Providers {
  provide(call: ProvideCall): Promise<ProvideResult>;
}
