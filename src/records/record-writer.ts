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
 * If a commit fails, every request in the batch fails UNAVAILABLE (nothing is released), the log's state is
 * read again before the next batch, and the writer goes on. A log that someone else appended to is never
 * adopted: the writer stops, every request fails, and readiness says so. When the backlog is full, new records
 * are refused at once (UNAVAILABLE), so a slow store makes requests fail fast instead of piling up memory.
 */
import { randomBytes } from 'node:crypto';
import { leafFieldsOf, storedRecordLeafHash, type AccessRecordDraft } from '../core/access-record.js';
import { Persons, recordLeafHash } from '../core/record-leaf.js';
import { base32Encode } from '../core/base32.js';
import { signCheckpoint } from '../core/checkpoint.js';
import { CompactRange } from '../core/compact-range.js';
import { GatewayError } from '../core/errors.js';
import { ed25519NoteSigner, type NoteSigner } from '../core/signed-note.js';
import type { Signer } from '../keys/signer.js';
import type { Logger } from '../log/logger.js';
import type { RecordAppender } from '../service/ports.js';
import { LOWEST_STORED_LEVEL } from './schema.js';
import { LOG_CONFLICT, type LogAppend, type NewCheckpoint, type PendingRecord, type RecordStore, type StoredCheckpoint } from './record-store.js';

export interface WriterObserver {
  batchCommitted(size: number, seconds: number): void;
  batchFailed(size: number): void;
  backlog(n: number): void;
  /** A checkpoint was signed and stored (size of the tree, seconds the signature took). */
  checkpointSigned?(size: number, seconds: number): void;
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
   * (the store cannot take it back).
   */
  readonly appendTimeoutMs?: number;
  /** The log this replica writes for its life (LINKGW_REPLICA_ID); default a random one (tests). */
  readonly logId?: string;
  /** The log's origin, also its note key name; default `linkgw/records/<logId>`. */
  readonly origin?: string;
  /** Sign a checkpoint at most this often while records arrive, ms (default 1000). */
  readonly checkpointIntervalMs?: number;
  /** Told of every checkpoint once it is stored (the witness client listens). */
  readonly onCheckpoint?: (c: StoredCheckpoint) => void;
  readonly observer?: WriterObserver;
}

interface Entry {
  readonly draft: AccessRecordDraft;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
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

export class RecordWriter implements RecordAppender {
  readonly logId: string;
  readonly origin: string;
  readonly #o: Required<Omit<RecordWriterOptions, 'logId' | 'origin' | 'observer' | 'onCheckpoint'>> & Pick<RecordWriterOptions, 'observer' | 'onCheckpoint'>;
  readonly #noteSigner: NoteSigner;
  #queue: Entry[] = [];
  #running = false;
  /** When the commit in progress started (ms since the epoch), or null. */
  #commitStarted: number | null = null;
  #state: LogState | null = null;
  /** The state must be read again from the store (at start, and after a failed commit). */
  #stale = true;
  /** Set when the log was written by someone else: this writer never writes again. */
  #lost: Error | null = null;
  /** A batch whose commit failed without saying whether it landed: its size and leaf hashes. */
  #uncertain: { fromSize: number; leafHashes: Buffer } | null = null;
  #opening: Promise<void> | undefined;
  /** A signed checkpoint waiting to be stored with the next commit. */
  #pendingCheckpoint: NewCheckpoint | null = null;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #signing: Promise<void> | undefined;
  #lastCheckpointAt = 0;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #idleResolve: (() => void) | undefined;

  constructor(o: RecordWriterOptions) {
    this.logId = o.logId ?? `t${base32Encode(randomBytes(10)).toLowerCase()}`;
    this.origin = o.origin ?? `linkgw/records/${this.logId}`;
    this.#o = { maxBatch: 2000, maxBatchSubjects: 50_000, maxBacklog: 100_000, appendTimeoutMs: 10_000, checkpointIntervalMs: 1000, ...o };
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

  /** Resolves when the record is durable; rejects with UNAVAILABLE when it cannot be. */
  append(draft: AccessRecordDraft): Promise<void> {
    if (this.#closed) return Promise.reject(new GatewayError('UNAVAILABLE', 'the gateway is shutting down'));
    if (this.#lost) return Promise.reject(new GatewayError('UNAVAILABLE', 'the access record log cannot be written; nothing was released', { cause: this.#lost }));
    if (this.#queue.length >= this.#o.maxBacklog)
      return Promise.reject(new GatewayError('UNAVAILABLE', 'the access record store is behind; try again', { details: { 'retry-after-ms': '100' } }));
    return new Promise<void>((resolve, reject) => {
      const entry: Entry = {
        draft,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      const timer = setTimeout(() => {
        // Still queued: it leaves the queue with its request, so no record claims an exchange that failed.
        const i = this.#queue.indexOf(entry);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new GatewayError('UNAVAILABLE', 'the access record store did not answer in time; nothing was released', { details: { 'retry-after-ms': '1000' } }));
      }, this.#o.appendTimeoutMs);
      timer.unref();
      this.#queue.push(entry);
      this.#o.observer?.backlog(this.#queue.length);
      if (!this.#running) this.#start();
    });
  }

  /** True while a commit has been running longer than the append timeout, or the log is lost: not ready. */
  stalled(now = Date.now()): boolean {
    return this.#lost !== null || (this.#commitStarted !== null && now - this.#commitStarted > this.#o.appendTimeoutMs);
  }

  /** Appends many records and resolves when all are durable. */
  appendAll(drafts: readonly AccessRecordDraft[]): Promise<void> {
    return Promise.all(drafts.map((d) => this.append(d))).then(() => undefined);
  }

  #start(): void {
    this.#running = true;
    this.#idle = new Promise((r) => (this.#idleResolve = r));
    // Let the current tick's appends join the first batch.
    setImmediate(() => void this.#loop());
  }

  async #resume(): Promise<void> {
    const claimed = await this.#o.store.claimLog(this.logId, this.origin);
    const known = this.#state?.range.size;
    if (known !== undefined && claimed.size !== known) {
      // Only the batch whose commit could not be confirmed may explain a different size, and only if the stored
      // leaves are exactly its leaves. Anything else is another writer: never adopt its leaves.
      const u = this.#uncertain;
      const n = u ? u.leafHashes.length / 32 : 0;
      let landed = false;
      if (u && u.fromSize === known && claimed.size === known + n) {
        const stored = await this.#o.store.nodes(this.logId, Array.from({ length: n }, (_, i) => ({ level: 0, index: known + i })));
        landed = Buffer.concat(stored).equals(u.leafHashes);
      }
      if (!landed) {
        this.#lost = new Error(`log ${this.logId} went from ${known} to ${claimed.size} leaves behind this writer's back`);
        throw this.#lost;
      }
    }
    this.#uncertain = null;
    const range = CompactRange.fromNodes(claimed.size, claimed.edge);
    try {
      await this.#checkTail(claimed.latest, range);
    } catch (e) {
      // A log that no longer extends what it signed is never written again by this writer (readiness fails);
      // a store that failed while being read is only a failed attempt.
      if (e instanceof LogDamagedError) this.#lost = e;
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
    while (this.#queue.length > 0 || this.#pendingCheckpoint) {
      const batch = this.#queue.splice(0, this.#batchLength());
      this.#o.observer?.backlog(this.#queue.length);
      const started = process.hrtime.bigint();
      this.#commitStarted = Date.now();
      let leafHashes: Buffer | undefined;
      let fromSize = 0;
      try {
        if (this.#lost) throw this.#lost;
        if (this.#stale) await this.open();
        const state = this.#state!;
        fromSize = state.range.size;
        const range = state.range.clone();
        const records: PendingRecord[] = [];
        leafHashes = Buffer.alloc(batch.length * 32);
        const levels: number[] = [];
        const indexes: number[] = [];
        const nodeHashes: Buffer[] = [];
        batch.forEach((e, i) => {
          const leafIndex = fromSize + i;
          const fields = leafFieldsOf(e.draft, e.draft.subjects);
          const h = recordLeafHash(this.origin, leafIndex, fields);
          h.copy(leafHashes!, i * 32);
          range.append(h, (n) => {
            if (n.level < LOWEST_STORED_LEVEL) return;
            levels.push(n.level);
            indexes.push(n.index);
            nodeHashes.push(n.hash);
          });
          records.push({ ...e.draft, logId: this.logId, leafIndex, personsCommitment: fields.persons === Persons.BATCH ? Buffer.from(fields.subjectsCommitment.buffer, fields.subjectsCommitment.byteOffset, 32) : null });
        });
        const checkpoint = this.#pendingCheckpoint ?? undefined;
        const a: LogAppend = {
          logId: this.logId,
          fromSize,
          records,
          leafHashes,
          nodes: { levels, indexes, hashes: Buffer.concat(nodeHashes) },
          ...(checkpoint ? { checkpoint } : {}),
        };
        await this.#o.store.append(a);
        state.range = range;
        if (checkpoint) {
          this.#pendingCheckpoint = null;
          state.latest = { size: checkpoint.size, kept: checkpoint.kept };
          if (checkpoint.kept) state.lastKeptAt = checkpoint.createdAt;
          this.#announce(checkpoint);
        }
        if (batch.length) this.#o.observer?.batchCommitted(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
        for (const e of batch) e.resolve();
        this.#scheduleCheckpoint();
      } catch (err) {
        if ((err as { code?: string }).code === LOG_CONFLICT) this.#lost = err as Error;
        else if (leafHashes && batch.length) this.#uncertain = { fromSize, leafHashes };
        // Read the log's state again before the next batch (the failed commit may have landed).
        this.#stale = true;
        if (batch.length) {
          this.#o.observer?.batchFailed(batch.length);
          this.#o.log.error('access record batch not committed; its requests fail', { size: batch.length, err });
        } else {
          this.#o.log.error('checkpoint not stored; it is tried again with the next commit', { err });
        }
        const e = new GatewayError('UNAVAILABLE', 'the access record could not be written; nothing was released', { cause: err });
        for (const x of batch) x.reject(e);
        if (this.#lost) {
          this.#pendingCheckpoint = null;
          this.#o.log.error('the access record log was written by someone else; this gateway writes no more records', { log: this.logId, err: this.#lost });
          for (const x of this.#queue.splice(0)) x.reject(e);
        } else if (batch.length === 0) {
          // Only a checkpoint was waiting and the store failed: try again after an interval, don't spin.
          setTimeout(() => {
            if (!this.#running && (this.#pendingCheckpoint || this.#queue.length)) this.#start();
          }, this.#o.checkpointIntervalMs).unref();
          break;
        }
      } finally {
        this.#commitStarted = null;
      }
    }
    this.#running = false;
    this.#idleResolve?.();
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
      subjects += this.#queue[i]!.draft.subjects?.length ?? 0;
      if (subjects > this.#o.maxBatchSubjects) return Math.max(1, i);
    }
    return n;
  }

  /** Stops taking records, waits for the queued ones to be committed (or to fail), and signs the last of them. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
    clearTimeout(this.#checkpointTimer);
    this.#checkpointTimer = undefined;
    await this.#signing;
    await this.#idle;
    const state = this.#state;
    if (state && !this.#stale && !this.#lost && !this.#pendingCheckpoint && state.range.size > (state.latest?.size ?? 0)) await this.#signCheckpoint();
    await this.#idle;
  }
}
