/**
 * The group-commit record writer: the only thing that writes the record store, and the one writer of its
 * replica's transparency log.
 *
 * `append` queues a record and resolves once the batch holding it is committed durably. While one batch is
 * being committed, new records gather; the next batch takes all of them (up to `maxBatch`), makes each a leaf
 * of the log (its canonical encoding, hashed), extends the tree's right edge in memory and commits records,
 * completed tree nodes and the log's new size in one transaction. Many requests share one fsync.
 *
 * Nothing is signed on the request path. At most every `checkpointIntervalMs` while records arrive, the
 * writer signs a C2SP checkpoint of the committed tree through the Signer (a file key or an HSM) and stores
 * it with the next commit; a checkpoint costs one signature a second however many records it covers, where a
 * seal per batch cost one per commit (~55 µs of main-thread CPU each). `close()` signs the last records.
 *
 * When a commit fails (store-errors.ts says how):
 * - **its connection failed or missed its deadline** (`not-committed`, `uncertain`): the writer reads the log
 *   again on a fresh connection and commits the batch again, up to `maxAttempts` times while its requests
 *   wait. That is safe even when the failed commit may still land (a hung server process that resumes): every
 *   append is a compare-and-set on the log's size, so of all attempts at one position at most one lands, and
 *   the writer keeps every attempt it could not confirm until one of its own commits at that position
 *   succeeds (then none of the others ever can) or the log is found to hold one of them (then that one is
 *   adopted). Requests whose batch still fails get UNAVAILABLE: nothing is released.
 * - **the store refused the content** (`rejected`: a constraint, a value it cannot hold): no single record may
 *   fail a shared commit (issue 8). The batch is halved and each half committed on its own, down to the culprit,
 *   whose request alone fails (INTERNAL, logged); the others commit.
 * - **someone else wrote the log** (a size it did not expect, and none of its unconfirmed commits explains it):
 *   the writer never adopts those leaves; it stops, every request fails, and readiness says so.
 *
 * A record that lands after its request had failed (its commit stalled past `appendTimeoutMs`, then landed, or
 * an unconfirmed commit is found in the log) is followed by a NOT_RELEASED record naming it, so the log says
 * what happened: the exchange was made, its answer was not released. The writer makes those records itself and
 * keeps them until they are stored.
 *
 * `ready()` is false while the writer cannot record: a commit has hung past the append timeout, the last commit
 * failed for a reason other than its content, or the log was lost. While failing, the writer tries the store
 * every `probeIntervalMs` (an empty append: a real write), so readiness comes back by itself with the store.
 * When the backlog is full, new records are refused at once (UNAVAILABLE), so a slow store makes requests fail
 * fast instead of piling up memory. `shutdownBy(deadline)` bounds the end: what is not committed by then fails.
 */
import { randomBytes } from 'node:crypto';
import { leafFieldsOf, notReleasedRecord, storedRecordLeafHash, type AccessRecordDraft } from '../core/access-record.js';
import { Persons, recordLeafHash } from '../core/record-leaf.js';
import { base32Encode } from '../core/base32.js';
import { runCommitment, runLength } from '../core/persons-run.js';
import { signCheckpoint } from '../core/checkpoint.js';
import { CompactRange } from '../core/compact-range.js';
import { GatewayError } from '../core/errors.js';
import { newRecordId } from '../core/record-id.js';
import { ed25519NoteSigner, type NoteSigner } from '../core/signed-note.js';
import type { Signer } from '../keys/signer.js';
import type { Logger } from '../log/logger.js';
import type { RecordAppender } from '../service/ports.js';
import { LOWEST_STORED_LEVEL } from './schema.js';
import type { LogAppend, NewCheckpoint, PendingRecord, RecordStore, StoredCheckpoint } from './record-store.js';
import { classifyAppendFailure, describeStoreError } from './store-errors.js';

export interface WriterObserver {
  batchCommitted(size: number, seconds: number): void;
  batchFailed(size: number): void;
  backlog(n: number): void;
  /** A checkpoint was signed and stored (size of the tree, seconds the signature took). */
  checkpointSigned?(size: number, seconds: number): void;
  /** Records found in the log after their requests had failed: each gets a NOT_RELEASED record. */
  recordsNotReleased?(n: number): void;
  /** A record the store refused (isolated from its batch); only its request failed. */
  recordRefused?(): void;
}

export interface RecordWriterOptions {
  readonly store: RecordStore;
  /** Signs the log's checkpoints (a file key or an HSM). */
  readonly signer: Signer;
  readonly log: Logger;
  readonly maxBatch?: number;
  /**
   * Persons named by the batch records of one commit, at most (default 50,000). A bulk-issuance record names
   * up to 10,000; without this cap a few streams could put hundreds of thousands of rows in one transaction
   * and run into the store's statement timeout. A batch always takes at least one record.
   */
  readonly maxBatchSubjects?: number;
  readonly maxBacklog?: number;
  /**
   * Longest a request waits for its record, ms (default 10,000). A store that stalls (a hung fsync, a lost
   * database) then fails requests UNAVAILABLE instead of holding them, and nothing is released. A record that
   * no commit has taken yet is dropped with its request; one already in the stalled commit may still land
   * (the store cannot take it back), and is then followed by a NOT_RELEASED record.
   */
  readonly appendTimeoutMs?: number;
  /**
   * Commits of one batch, at most, when its connection fails or misses the store's deadline (default 3): the
   * first, and the same records again on a fresh connection. A store that is down fails them fast.
   */
  readonly maxAttempts?: number;
  /** While commits fail, how often the writer tries the store by itself (an empty append), ms (default 1000). */
  readonly probeIntervalMs?: number;
  /**
   * While no commit runs, how often the writer checks the store (`RecordStore.check`: one read, and for SQLite
   * that its files are still the ones opened), ms (default 2000; 0: never). Without it a replica whose store is
   * gone or unreachable says ready until the first request fails; with it, /readyz tells within this interval
   * plus the store's deadline. A commit is as good as a check, so a busy writer checks nothing extra.
   */
  readonly idleCheckMs?: number;
  /** The log this replica writes for its life (LINKGW_REPLICA_ID); default a random one (tests). */
  readonly logId?: string;
  /** The log's origin, also its note key name; default `linkgw/records/<logId>`. */
  readonly origin?: string;
  /** Sign a checkpoint at most this often while records arrive, ms (default 1000). */
  readonly checkpointIntervalMs?: number;
  /**
   * Linger, ms (default 0: off): a batch whose first record has waited less than this, and that holds fewer
   * than `lingerRecords` records, waits until it has waited this long before it is committed, so that one
   * commit (one fsync, one transaction, one round trip to the store's thread) covers several records at
   * moderate rates, where without it most batches hold one record. Each record waits at most this much more;
   * its request still waits for its commit.
   */
  readonly lingerMs?: number;
  /** A lingering batch is committed at once when it holds this many records (default 64). */
  readonly lingerRecords?: number;
  /** Told of every checkpoint once it is stored (the witness client listens). */
  readonly onCheckpoint?: (c: StoredCheckpoint) => void;
  readonly observer?: WriterObserver;
}

interface Entry {
  readonly draft: AccessRecordDraft;
  /**
   * `waiting` while its request waits; `failed` once the request was answered with an error (nothing was
   * released); `done` once the record is committed (or, for the writer's own records, given up at close).
   */
  state: 'waiting' | 'failed' | 'done';
  /** A NOT_RELEASED record the writer made itself: no request waits, no timeout; kept until stored. */
  readonly internal: boolean;
  /** The request's signal: aborted when its client cancelled or its deadline passed (see `append`). */
  readonly signal: AbortSignal | undefined;
  /** A batch record's persons commitment, once computed. */
  commitment?: Buffer;
  succeed(): void;
  fail(e: Error): void;
}

/** A commit the store did not confirm: it may have landed, or may still land. */
interface Unconfirmed {
  readonly fromSize: number;
  readonly leafHashes: Buffer;
  readonly entries: readonly Entry[];
}

/** One commit, ready for the store. */
interface Prepared {
  readonly append: LogAppend;
  readonly entries: Entry[];
  readonly range: CompactRange;
}

/** The committed state of the log, as this writer knows it. */
interface LogState {
  range: CompactRange;
  /** The latest stored checkpoint: its size and whether it was kept in the history. */
  latest: { size: number; kept: boolean } | null;
  lastKeptAt: number | null;
}

/** The stored log does not extend its last signed checkpoint: resuming it would sign a fork. */
export class LogDamagedError extends Error {
  override readonly name = 'LogDamagedError';
}

const HOUR = 3_600_000;
const NOTHING_RELEASED = 'the access record could not be written; nothing was released';
const WRITTEN_BY_OTHERS = 'the access record log was written by someone else; this gateway writes no more records';

/** What a request whose signal aborted fails with: its own reason (CANCELLED, DEADLINE_EXCEEDED). */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof GatewayError ? signal.reason : new GatewayError('CANCELLED', 'the call was cancelled');
}

export class RecordWriter implements RecordAppender {
  readonly logId: string;
  readonly origin: string;
  readonly #o: Required<Omit<RecordWriterOptions, 'logId' | 'origin' | 'observer' | 'onCheckpoint'>> & Pick<RecordWriterOptions, 'observer' | 'onCheckpoint'>;
  readonly #noteSigner: NoteSigner;
  #queue: Entry[] = [];
  #running = false;
  /** When the commit in progress started (ms since the epoch), or null; and the records it holds. */
  #commitStarted: number | null = null;
  #inCommit: readonly Entry[] = [];
  #state: LogState | null = null;
  /** The state must be read again from the store (at start, and after a failed commit). */
  #stale = true;
  /**
   * Set when the log was written by someone else, or the store it lives in is gone (its file removed or
   * replaced): this writer never writes again. `#lostWhy` says which, for readiness and the requests' logs.
   */
  #lost: Error | null = null;
  #lostWhy = '';
  #idleTimer: NodeJS.Timeout | undefined;
  /** When the store last answered a commit or a check (ms since the epoch). */
  #lastAnswer = 0;
  /** Commits at the current size that failed without saying whether they landed (see the file comment). */
  #unconfirmed: Unconfirmed[] = [];
  /** Since when, and why, commits fail (not counting records the store refused); null while they succeed. */
  #failing: { since: number; why: string } | null = null;
  #probeTimer: NodeJS.Timeout | undefined;
  #opening: Promise<void> | undefined;
  /** A signed checkpoint waiting to be stored with the next commit. */
  #pendingCheckpoint: NewCheckpoint | null = null;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #signing: Promise<void> | undefined;
  #lastCheckpointAt = 0;
  #closed = false;
  /** Past the shutdown deadline: everything still waiting has failed, and nothing more is attempted. */
  #abandoned = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #abandon: Promise<void> = new Promise(() => undefined);
  #idle: Promise<void> = Promise.resolve();
  #idleResolve: (() => void) | undefined;
  /** When the oldest record in the queue was queued (performance.now()), for the linger. */
  #queuedSince = 0;
  /** Ends the linger in progress, if any. */
  #wakeLinger: (() => void) | undefined;

  constructor(o: RecordWriterOptions) {
    this.logId = o.logId ?? `t${base32Encode(randomBytes(10)).toLowerCase()}`;
    this.origin = o.origin ?? `linkgw/records/${this.logId}`;
    this.#o = { maxBatch: 2000, maxBatchSubjects: 50_000, maxBacklog: 100_000, appendTimeoutMs: 10_000, maxAttempts: 3, probeIntervalMs: 1000, idleCheckMs: 2000, checkpointIntervalMs: 1000, lingerMs: 0, lingerRecords: 64, ...o };
    this.#noteSigner = ed25519NoteSigner(this.origin, o.signer);
  }

  /** Leaves covered by the latest checkpoint this writer knows of (0 before the first). */
  get signedSize(): number {
    return this.#state?.latest?.size ?? 0;
  }

  /** Leaves committed so far (after `open`). */
  get size(): number {
    return this.#state?.range.size ?? 0;
  }

  /**
   * Claims the log (its writer lock) and resumes it, checking that what is stored after the last signed
   * checkpoint still extends it. Appending opens the log too; the gateway opens it at start so that a second
   * writer of the same log, or a damaged log, stops the start instead of the first request.
   */
  open(): Promise<void> {
    this.#opening ??= this.#resume().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  /**
   * Resolves when the record is durable; rejects with UNAVAILABLE when it cannot be.
   *
   * `signal` is the request's (its client cancelled, or its deadline passed): a call that ended stops where it
   * is. Aborted before its record is queued, or while it waits in the queue, the record is never committed (no
   * record claims an exchange that did not happen); aborted while its commit runs, the record may land, and a
   * NOT_RELEASED record then follows it; landed after the abort, likewise. The promise rejects with the
   * signal's reason in each case, so the answer is never sent. With `exchanged` (the provider has answered), the
   * record is committed whatever the signal does, and followed by NOT_RELEASED if the call ended meanwhile.
   */
  append(draft: AccessRecordDraft, call?: { readonly signal?: AbortSignal | undefined; readonly exchanged?: boolean }): Promise<void> {
    const signal = call?.signal;
    const exchanged = call?.exchanged === true;
    if (this.#closed) return Promise.reject(new GatewayError('UNAVAILABLE', 'the gateway is shutting down'));
    if (this.#lost) return Promise.reject(new GatewayError('UNAVAILABLE', 'the access record log cannot be written; nothing was released', { cause: this.#lost }));
    if (signal?.aborted && !exchanged) return Promise.reject(abortReason(signal));
    if (this.#queue.length >= this.#o.maxBacklog)
      return Promise.reject(new GatewayError('UNAVAILABLE', 'the access record store is behind; try again', { details: { 'retry-after-ms': '100' } }));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        // Still queued: it leaves the queue with its request. In a commit: `#landed` follows it with NOT_RELEASED.
        const i = this.#queue.indexOf(entry);
        if (i >= 0) this.#queue.splice(i, 1);
        entry.fail(abortReason(signal!));
      };
      const entry: Entry = {
        draft,
        state: 'waiting',
        internal: false,
        signal,
        succeed: () => {
          if (entry.state !== 'waiting') return;
          entry.state = 'done';
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (e) => {
          if (entry.state !== 'waiting') return;
          entry.state = 'failed';
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        // Still queued: it leaves the queue with its request, so no record claims an exchange that failed. In a
        // commit: that commit may still land, and a NOT_RELEASED record then follows it.
        const i = this.#queue.indexOf(entry);
        if (i >= 0) this.#queue.splice(i, 1);
        entry.fail(new GatewayError('UNAVAILABLE', 'the access record store did not answer in time; nothing was released', { details: { 'retry-after-ms': '1000' } }));
      }, this.#o.appendTimeoutMs);
      timer.unref();
      // An exchange that happened is recorded whatever the call does; `#landed` then says it was not released.
      if (!exchanged) signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#queue.length === 0) this.#queuedSince = performance.now();
      this.#queue.push(entry);
      if (this.#wakeLinger && this.#queue.length >= this.#o.lingerRecords) this.#wakeLinger();
      this.#o.observer?.backlog(this.#queue.length);
      if (!this.#running) this.#start();
    });
  }

  /** True while a commit has been running longer than the append timeout, or the log is lost. */
  stalled(now = Date.now()): boolean {
    return this.#lost !== null || (this.#commitStarted !== null && now - this.#commitStarted > this.#o.appendTimeoutMs);
  }

  /** Whether records can be written now: not stalled, not lost, and the last commit (or probe) succeeded. */
  ready(now = Date.now()): boolean {
    return this.notReadyReason(now) === undefined;
  }

  /** Why records cannot be written now (for /readyz and logs), or undefined when they can. */
  notReadyReason(now = Date.now()): string | undefined {
    if (this.#lost) return this.#lostWhy;
    if (this.#commitStarted !== null && now - this.#commitStarted > this.#o.appendTimeoutMs) return `an access record commit has been running for ${now - this.#commitStarted} ms`;
    if (this.#failing) return `access record commits fail (for ${now - this.#failing.since} ms): ${this.#failing.why}`;
    return undefined;
  }

  /** Appends many records and resolves when all are durable. */
  appendAll(drafts: readonly AccessRecordDraft[], signal?: AbortSignal): Promise<void> {
    return Promise.all(drafts.map((d) => this.append(d, { signal }))).then(() => undefined);
  }

  #start(): void {
    if (this.#abandoned) return;
    this.#running = true;
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#idle = new Promise((r) => (this.#idleResolve = r));
    // Let the current tick's appends join the first batch.
    setImmediate(() => void this.#loop());
  }

  async #resume(): Promise<void> {
    const claimed = await this.#o.store.claimLog(this.logId, this.origin);
    const known = this.#state?.range.size;
    let adopted: Unconfirmed | undefined;
    if (known !== undefined && claimed.size !== known) {
      // Only a commit this writer could not confirm may explain a different size, and only if the stored leaves
      // are exactly its leaves. Anything else is another writer: never adopt its leaves.
      for (const u of this.#unconfirmed) {
        const n = u.leafHashes.length / 32;
        if (u.fromSize !== known || claimed.size !== known + n) continue;
        const stored = await this.#o.store.nodes(this.logId, Array.from({ length: n }, (_, i) => ({ level: 0, index: known + i })));
        if (Buffer.concat(stored).equals(u.leafHashes)) {
          adopted = u;
          break;
        }
      }
      if (!adopted) {
        this.#lost = new Error(`log ${this.logId} went from ${known} to ${claimed.size} leaves behind this writer's back`);
        this.#lostWhy = WRITTEN_BY_OTHERS;
        throw this.#lost;
      }
    }
    const range = CompactRange.fromNodes(claimed.size, claimed.edge);
    try {
      await this.#checkTail(claimed.latest, range);
    } catch (e) {
      // A log that no longer extends what it signed is never written again by this writer (readiness fails);
      // a store that failed while being read is only a failed attempt.
      if (e instanceof LogDamagedError) (this.#lost = e), (this.#lostWhy = `the access record log is damaged: ${e.message}`);
      throw e;
    }
    // A checkpoint whose commit failed without saying so may have been stored after all.
    if (this.#pendingCheckpoint && claimed.latest && claimed.latest.size >= this.#pendingCheckpoint.size) this.#pendingCheckpoint = null;
    this.#state = {
      range,
      latest: claimed.latest && { size: claimed.latest.size, kept: claimed.latest.kept },
      lastKeptAt: claimed.lastKeptAt,
    };
    this.#stale = false;
    if (adopted) {
      // That commit did land; none of the others at that position ever can.
      this.#unconfirmed = [];
      this.#o.log.warn('an access record commit that had not answered is in the log', { log: this.logId, records: adopted.entries.length, fromSize: adopted.fromSize });
      this.#landed(adopted.entries);
    }
    if (claimed.latest) this.#lastCheckpointAt = Math.max(this.#lastCheckpointAt, claimed.latest.createdAt);
    // Leaves a crashed writer committed but never signed get their checkpoint now.
    this.#scheduleCheckpoint();
  }

  /**
   * A resumed log must extend the last checkpoint it signed: the stored tree has that root at that size, and
   * the records stored after it hash to the stored leaves. Otherwise the writer would sign a fork of its own
   * history. (What comes after the last checkpoint is vouched for by the store alone: see the ADR. The persons
   * of batch records are not read here: the leaf commits to the row's commitment, and whether the persons
   * table still matches it is for `records verify`, which reads that table once for the whole store.)
   */
  async #checkTail(latest: StoredCheckpoint | null, edge: CompactRange): Promise<void> {
    const from = latest?.size ?? 0;
    const fail = (why: string) => new LogDamagedError(`log ${this.logId} does not extend its last checkpoint (${from} leaves): ${why}; run linkgw records verify`);
    if (from > edge.size) throw fail(`the log has only ${edge.size} leaves`);
    const tree = from === 0 ? CompactRange.empty() : CompactRange.fromNodes(from, await this.#o.store.nodes(this.logId, CompactRange.nodesFor(from)));
    if (latest && !tree.root().equals(latest.rootHash)) throw fail('the stored tree has another root at that size');
    if (edge.size === from) return;
    for (let at = from; at < edge.size; ) {
      const page = await this.#o.store.readLeaves(this.logId, at, edge.size, 1000);
      if (page.length === 0) throw fail(`leaf ${at} is missing`);
      for (const r of page) {
        if (r.leafIndex !== at) throw fail(`leaf ${at} is missing`);
        const h = storedRecordLeafHash(this.origin, r);
        if (!h.equals(r.leafHash)) throw fail(`the record at leaf ${at} does not match its leaf hash`);
        tree.append(h);
        at++;
      }
    }
    if (!tree.root().equals(edge.root())) throw fail(`the records after it do not match the stored tree`);
  }

  async #loop(): Promise<void> {
    while (!this.#abandoned && (this.#queue.length > 0 || this.#pendingCheckpoint || this.#failing)) {
      const linger = this.#lingerFor();
      if (linger > 0) {
        await new Promise<void>((r) => {
          const t = setTimeout(() => ((this.#wakeLinger = undefined), r()), linger);
          // Enough records, or the writer closing, end the wait early.
          this.#wakeLinger = () => (clearTimeout(t), (this.#wakeLinger = undefined), r());
        });
      }
      const batch = this.#queue.splice(0, this.#batchLength());
      if (this.#queue.length > 0) this.#queuedSince = performance.now();
      this.#o.observer?.backlog(this.#queue.length);
      const ok = await this.#commit(batch);
      // While the store fails, the loop rests between tries: requests still queued get their chance (and fail
      // fast), the writer's own records and checkpoints wait for the next probe.
      if (!ok && !this.#queue.some((e) => !e.internal)) break;
      if (ok && batch.length === 0 && !this.#pendingCheckpoint && this.#queue.length === 0) break;
    }
    this.#running = false;
    if (this.#failing && !this.#abandoned && !this.#lost) {
      this.#probeTimer = setTimeout(() => {
        this.#probeTimer = undefined;
        if (!this.#running) this.#start();
      }, this.#o.probeIntervalMs);
      this.#probeTimer.unref();
    } else this.#scheduleIdleCheck();
    this.#idleResolve?.();
  }

  /** While nothing is committed, check the store every `idleCheckMs` (see the option). */
  #scheduleIdleCheck(): void {
    const every = this.#o.idleCheckMs;
    if (every <= 0 || this.#closed || this.#abandoned || this.#lost || this.#running || this.#idleTimer || this.#failing) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#running || this.#closed) return;
      // A commit that answered recently said as much as a check would.
      if (Date.now() - this.#lastAnswer < every) return this.#scheduleIdleCheck();
      this.#o.store.check().then(
        () => {
          this.#lastAnswer = Date.now();
          this.#scheduleIdleCheck();
        },
        (err: unknown) => {
          if (this.#running || this.#closed) return;
          if (classifyAppendFailure(err) === 'gone') this.#loseStore(err);
          else {
            // Not ready until a commit succeeds again: the probe (an empty append) takes over from here.
            this.#fail(err);
            this.#start();
          }
        },
      );
    }, every);
    this.#idleTimer.unref();
  }

  /** The store the log lives in is gone: never write again, never start a new log here (see STORE_GONE). */
  #loseStore(err: unknown): void {
    if (this.#lost) return;
    this.#lost = err instanceof Error ? err : new Error(describeStoreError(err));
    this.#lostWhy = `the access record store is gone (${describeStoreError(err)}); this gateway writes no more records: restore the store and restart`;
    this.#o.log.error('the access record store is gone; this gateway writes no more records, and every request fails until it is restored and the gateway restarted', { log: this.logId, err: describeStoreError(err) });
    for (const x of this.#queue.splice(0)) x.fail(new GatewayError('UNAVAILABLE', NOTHING_RELEASED, { cause: err }));
  }

  /** How long the next batch should still wait for more records (0: commit now). */
  #lingerFor(): number {
    const { lingerMs, lingerRecords } = this.#o;
    if (lingerMs <= 0 || this.#closed || this.#failing || this.#queue.length === 0 || this.#queue.length >= lingerRecords) return 0;
    const left = this.#queuedSince + lingerMs - performance.now();
    return left >= 0.5 ? left : 0;
  }

  /**
   * Commits `entries` (a batch, half of one being isolated, or none: the pending checkpoint, or a probe of the
   * store); true when the store took the commit.
   */
  async #commit(entries: Entry[]): Promise<boolean> {
    // Records whose requests failed meanwhile are not committed now: nothing of theirs was released. (Reading the
    // log again may also find some of them committed by an earlier attempt.)
    const pending = () => entries.filter((e) => e.state === 'waiting' || (e.internal && e.state !== 'done'));
    for (let attempt = 1; ; attempt++) {
      let live = pending();
      if (entries.length > 0 && live.length === 0) return true;
      const started = process.hrtime.bigint();
      this.#commitStarted = Date.now();
      this.#inCommit = live;
      let prepared: Prepared | undefined;
      try {
        if (this.#lost) throw this.#lost;
        if (this.#stale) await this.open();
        live = pending();
        if (entries.length > 0 && live.length === 0) return true;
        this.#inCommit = live;
        prepared = this.#prepare(live);
        if (live.length > 0 && prepared.entries.length === 0) return true;
        await this.#o.store.append(prepared.append);
        this.#committed(prepared, started);
        return true;
      } catch (err) {
        if (this.#abandoned) return false;
        const kind = err === this.#lost ? 'lost' : classifyAppendFailure(err);
        if (kind === 'conflict' && this.#unconfirmed.length > 0 && attempt < this.#o.maxAttempts + 1) {
          // Maybe one of this writer's own unconfirmed commits landed meanwhile: reading the log again tells.
          this.#stale = true;
          continue;
        }
        if (kind === 'rejected' && prepared) {
          if (prepared.append.checkpoint) {
            // The checkpoint may be what the store refused: commit the records without it (a new one follows).
            this.#pendingCheckpoint = null;
            this.#stale = true;
            continue;
          }
          if (prepared.entries.length > 1) {
            // No single record may fail a shared commit: each half on its own, down to the culprit.
            const half = Math.ceil(prepared.entries.length / 2);
            const a = await this.#commit(prepared.entries.slice(0, half));
            const b = await this.#commit(prepared.entries.slice(half));
            return a || b;
          }
          if (prepared.entries.length === 1) {
            this.#refuse(prepared.entries[0]!, err);
            return true;
          }
        }
        if (kind === 'conflict') (this.#lost = err as Error), (this.#lostWhy = WRITTEN_BY_OTHERS);
        if (kind === 'gone') this.#loseStore(err);
        if (kind === 'uncertain' && prepared) this.#unconfirmed.push({ fromSize: prepared.append.fromSize, leafHashes: prepared.append.leafHashes, entries: prepared.entries });
        // Read the log's state again before the next commit (the failed one may have landed).
        this.#stale = true;
        if (!this.#lost) this.#fail(err);
        const waiting = live.some((e) => e.state === 'waiting');
        if (!this.#lost && waiting && attempt < this.#o.maxAttempts) {
          this.#o.log.warn('access record commit failed; trying again on a fresh connection', { size: live.length, attempt, err: describeStoreError(err) });
          await new Promise((r) => setTimeout(r, 50 * attempt));
          continue;
        }
        this.#failed(live, err);
        return false;
      } finally {
        this.#commitStarted = null;
        this.#inCommit = [];
      }
    }
  }

  /** The leaves, nodes and records of one commit at the current size. A record that cannot be a leaf fails alone. */
  #prepare(entries: Entry[]): Prepared {
    const state = this.#state!;
    const fromSize = state.range.size;
    const range = state.range.clone();
    const records: PendingRecord[] = [];
    const hashes: Buffer[] = [];
    const levels: number[] = [];
    const indexes: number[] = [];
    const nodeHashes: Buffer[] = [];
    const ok: Entry[] = [];
    for (const e of entries) {
      const leafIndex = fromSize + ok.length;
      let h: Buffer;
      let fields: ReturnType<typeof leafFieldsOf>;
      try {
        // A batch record's commitment hashes its persons (~3 ms for 10,000): once per record, however many
        // times its batch is prepared (retries, halving), unless the caller computed it already.
        if (e.draft.persons && !e.draft.personsCommitment) e.commitment ??= runCommitment(e.draft.recordId, e.draft.persons);
        fields = leafFieldsOf(e.draft, e.draft.persons, e.draft.personsCommitment ?? e.commitment);
        h = recordLeafHash(this.origin, leafIndex, fields);
      } catch (err) {
        // A field the leaf cannot hold (over 65,535 bytes): only this record's request fails.
        this.#refuse(e, err);
        continue;
      }
      ok.push(e);
      hashes.push(h);
      range.append(h, (n) => {
        if (n.level < LOWEST_STORED_LEVEL) return;
        levels.push(n.level);
        indexes.push(n.index);
        nodeHashes.push(n.hash);
      });
      records.push({ ...e.draft, logId: this.logId, leafIndex, personsCommitment: fields.persons === Persons.BATCH ? Buffer.from(fields.subjectsCommitment.buffer, fields.subjectsCommitment.byteOffset, 32) : null });
    }
    const checkpoint = this.#pendingCheckpoint ?? undefined;
    return {
      entries: ok,
      range,
      append: {
        logId: this.logId,
        fromSize,
        records,
        leafHashes: Buffer.concat(hashes),
        nodes: { levels, indexes, hashes: Buffer.concat(nodeHashes) },
        ...(checkpoint ? { checkpoint } : {}),
      },
    };
  }

  #committed(p: Prepared, started: bigint): void {
    const state = this.#state!;
    this.#lastAnswer = Date.now();
    state.range = p.range;
    // This commit won the position: no commit this writer could not confirm at it can ever land.
    this.#unconfirmed = [];
    if (this.#failing) this.#o.log.info('access record commits succeed again', { log: this.logId, failedForMs: Date.now() - this.#failing.since });
    this.#failing = null;
    const checkpoint = p.append.checkpoint;
    if (checkpoint) {
      this.#pendingCheckpoint = null;
      state.latest = { size: checkpoint.size, kept: checkpoint.kept };
      if (checkpoint.kept) state.lastKeptAt = checkpoint.createdAt;
      this.#announce(checkpoint);
    }
    if (p.entries.length) this.#o.observer?.batchCommitted(p.entries.length, Number(process.hrtime.bigint() - started) / 1e9);
    this.#landed(p.entries);
    this.#scheduleCheckpoint();
  }

  /** Records now in the log: their requests may go on; a request that failed meanwhile gets a NOT_RELEASED record. */
  #landed(entries: readonly Entry[]): void {
    const late: AccessRecordDraft[] = [];
    for (const e of entries) {
      // Its call ended while the commit ran (the abort listener has failed it already, or is about to): the record
      // is in the log, its answer is never sent.
      if (e.state === 'waiting' && e.signal?.aborted) e.fail(abortReason(e.signal));
      if (e.state === 'failed' && !e.internal) late.push(e.draft);
      if (e.internal) e.state = 'done';
      else e.succeed();
    }
    if (late.length === 0) return;
    this.#o.log.warn('access records landed after their requests had failed; NOT_RELEASED records follow them', { log: this.logId, records: late.map((d) => d.recordId) });
    this.#o.observer?.recordsNotReleased?.(late.length);
    const own = late.map((d) => this.#internal(notReleasedRecord(newRecordId(), d)));
    if (this.#abandoned) return this.#giveUp(own);
    // First in the next batch, and kept until stored.
    this.#queue.unshift(...own);
    if (!this.#running) this.#start();
  }

  #internal(draft: AccessRecordDraft): Entry {
    const entry: Entry = {
      draft,
      state: 'waiting',
      internal: true,
      signal: undefined,
      succeed: () => void (entry.state = 'done'),
      fail: () => undefined,
    };
    return entry;
  }

  /** The store refused this record (or it cannot be a leaf): its request fails, the others go on. */
  #refuse(e: Entry, err: unknown): void {
    this.#o.log.error('access record refused by the record store; only its request fails', { log: this.logId, recordId: e.draft.recordId, err: describeStoreError(err) });
    this.#o.observer?.recordRefused?.();
    if (e.internal) e.state = 'done';
    e.fail(new GatewayError('INTERNAL', 'the access record was refused by the record store; nothing was released', { cause: err }));
  }

  /** Commits fail for a reason that is not their content: not ready until one succeeds (the probe tries). */
  #fail(err: unknown): void {
    const why = describeStoreError(err);
    if (!this.#failing) this.#o.log.error('access record commits fail; not ready until the store takes one again', { log: this.logId, err: why });
    this.#failing = { since: this.#failing?.since ?? Date.now(), why };
  }

  /** The last attempt at these records failed: their requests fail; the writer's own records wait for the next try. */
  #failed(entries: readonly Entry[], err: unknown): void {
    const requests = entries.filter((e) => !e.internal && e.state === 'waiting');
    if (requests.length) {
      this.#o.observer?.batchFailed(requests.length);
      this.#o.log.error('access record batch not committed; its requests fail', { size: requests.length, err: describeStoreError(err) });
    } else if (entries.length === 0) {
      this.#o.log.warn('the record store was tried and still fails', { log: this.logId, err: describeStoreError(err) });
    }
    const e = new GatewayError('UNAVAILABLE', NOTHING_RELEASED, { cause: err });
    for (const x of requests) x.fail(e);
    const own = entries.filter((x) => x.internal && x.state !== 'done');
    if (this.#lost) {
      this.#pendingCheckpoint = null;
      this.#o.log.error('the access record log was written by someone else; this gateway writes no more records', { log: this.logId, err: this.#lost });
      for (const x of this.#queue.splice(0)) x.fail(e);
      this.#giveUp(own);
    } else this.#queue.unshift(...own);
  }

  /** The writer's own records that will never be stored: said loudly, with the records they were to correct. */
  #giveUp(own: readonly Entry[]): void {
    if (own.length === 0) return;
    for (const x of own) x.state = 'done';
    this.#o.log.error('NOT_RELEASED records could not be written: these records claim answers that were never released', {
      log: this.logId,
      records: own.map((x) => x.draft.correctsRecordId),
    });
  }

  /** Signs a checkpoint of the committed tree once the interval since the last one has passed. */
  #scheduleCheckpoint(): void {
    const state = this.#state;
    // One checkpoint at a time: the next is signed only once the last is stored (it says which one it replaces).
    if (!state || this.#stale || this.#checkpointTimer || this.#signing || this.#pendingCheckpoint || this.#lost) return;
    if (state.range.size <= (state.latest?.size ?? 0)) return;
    const wait = Math.max(0, this.#lastCheckpointAt + this.#o.checkpointIntervalMs - Date.now());
    this.#checkpointTimer = setTimeout(() => {
      this.#checkpointTimer = undefined;
      this.#signing = this.#signCheckpoint().finally(() => {
        this.#signing = undefined;
        this.#scheduleCheckpoint();
      });
    }, wait);
    this.#checkpointTimer.unref();
  }

  async #signCheckpoint(): Promise<void> {
    const state = this.#state;
    // Only what this writer knows to be committed is signed; after a failure, wait for the state to be read.
    if (!state || this.#stale || this.#lost) return;
    const size = state.range.size;
    const rootHash = state.range.root();
    const started = process.hrtime.bigint();
    const now = Date.now();
    this.#lastCheckpointAt = now;
    let signedNote: string;
    try {
      signedNote = await signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, this.#noteSigner);
    } catch (err) {
      this.#o.log.error('checkpoint not signed; tried again after the interval', { log: this.logId, size, err });
      return;
    }
    const previous = state.latest;
    const lastKept = state.lastKeptAt;
    this.#pendingCheckpoint = {
      size,
      rootHash,
      signedNote,
      createdAt: now,
      kept: lastKept === null || Math.floor(lastKept / HOUR) !== Math.floor(now / HOUR),
      replaces: previous && !previous.kept ? previous.size : null,
    };
    this.#o.observer?.checkpointSigned?.(size, Number(process.hrtime.bigint() - started) / 1e9);
    if (!this.#running) this.#start();
  }

  #announce(c: NewCheckpoint): void {
    if (!this.#o.onCheckpoint) return;
    try {
      this.#o.onCheckpoint({ logId: this.logId, origin: this.origin, size: c.size, rootHash: c.rootHash, signedNote: c.signedNote, cosignatures: '', createdAt: c.createdAt, kept: c.kept });
    } catch (err) {
      this.#o.log.error('checkpoint listener failed', { err });
    }
  }

  /** How many queued records the next batch takes: up to maxBatch records and maxBatchSubjects persons. */
  #batchLength(): number {
    const n = Math.min(this.#queue.length, this.#o.maxBatch);
    let subjects = 0;
    for (let i = 0; i < n; i++) {
      const persons = this.#queue[i]!.draft.persons;
      subjects += persons ? runLength(persons) : 0;
      if (subjects > this.#o.maxBatchSubjects) return Math.max(1, i);
    }
    return n;
  }

  /**
   * From `deadline` (ms since the epoch) on, nothing more is attempted: what is still waiting fails (nothing is
   * released), and `close()` returns. The gateway sets it when it starts to stop, so that a hung store cannot
   * hold the process past its shutdown grace.
   */
  shutdownBy(deadline: number): void {
    clearTimeout(this.#deadlineTimer);
    this.#abandon = new Promise<void>((resolve) => {
      this.#deadlineTimer = setTimeout(() => {
        this.#closed = true;
        this.#abandoned = true;
        const e = new GatewayError('UNAVAILABLE', 'the gateway is shutting down; the access record was not written, nothing was released');
        // The commit in progress too: should it land later, its records get NOT_RELEASED ones (or are logged).
        const left = [...this.#inCommit, ...this.#queue.splice(0)];
        for (const x of left) x.fail(e);
        this.#giveUp(left.filter((x) => x.internal && x.state !== 'done'));
        this.#o.log.warn('shutdown deadline reached; access records still waiting have failed', { log: this.logId, records: left.length });
        this.#reportUnconfirmed(left);
        resolve();
      }, Math.max(0, deadline - Date.now()));
      this.#deadlineTimer.unref();
    });
  }

  /** Stops taking records, waits for the queued ones to be committed (or to fail), and signs the last of them. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeLinger?.();
    const until = (p: Promise<unknown> | undefined) => Promise.race([p, this.#abandon]);
    await until(this.#idle);
    clearTimeout(this.#checkpointTimer);
    this.#checkpointTimer = undefined;
    clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    await until(this.#signing);
    await until(this.#idle);
    const state = this.#state;
    if (!this.#abandoned && state && !this.#stale && !this.#lost && !this.#pendingCheckpoint && state.range.size > (state.latest?.size ?? 0)) await until(this.#signCheckpoint());
    await until(this.#idle);
    clearTimeout(this.#deadlineTimer);
    this.#giveUp(this.#queue.splice(0).filter((x) => x.internal));
    if (!this.#abandoned) this.#reportUnconfirmed([]);
    this.#abandoned = true;
  }

  /**
   * Records whose commit never answered, at the end: should one land after the process is gone, nothing will
   * follow it with a NOT_RELEASED record, so the operator gets their ids (their requests all failed).
   */
  #reportUnconfirmed(inCommit: readonly Entry[]): void {
    const ids = new Set([...this.#unconfirmed.flatMap((u) => u.entries), ...inCommit.filter((e) => this.#inCommit.includes(e))].map((e) => e.draft.recordId));
    if (ids.size) this.#o.log.warn('access records whose commit did not answer may still land; their requests failed, and no NOT_RELEASED record can follow them now', { log: this.logId, records: [...ids] });
  }
}
