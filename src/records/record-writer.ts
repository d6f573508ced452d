/**
 * The group-commit record writer: the only thing that writes the record store.
 *
 * `append` queues a record and resolves once the batch holding it is committed durably. While one batch is
 * being committed, new records gather; the next batch takes all of them (up to `maxBatch`), links them onto
 * the chain, seals the head with Ed25519 and commits records and seal in one transaction. Many requests share
 * one fsync and one signature.
 *
 * If a commit fails, every request in the batch fails UNAVAILABLE (nothing is released), the chain head is
 * re-read from the store before the next batch, and the writer goes on. When the backlog is full, new records
 * are refused at once (UNAVAILABLE), so a slow store makes requests fail fast instead of piling up memory.
 */
import { randomBytes } from 'node:crypto';
import { chain, genesisHash, sealMessage, sealOf, type AccessRecordDraft, type ChainLink } from '../core/access-record.js';
import { base32Encode } from '../core/base32.js';
import { GatewayError } from '../core/errors.js';
import type { Signer } from '../keys/signer.js';
import type { Logger } from '../log/logger.js';
import type { RecordAppender } from '../service/ports.js';
import type { RecordStore } from './record-store.js';

export interface WriterObserver {
  batchCommitted(size: number, seconds: number): void;
  batchFailed(size: number): void;
  backlog(n: number): void;
}

export interface RecordWriterOptions {
  readonly store: RecordStore;
  /** Signs each batch's chain head (a file key or an HSM). */
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
  readonly chainId?: string;
  readonly observer?: WriterObserver;
}

interface Entry {
  readonly draft: AccessRecordDraft;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class RecordWriter implements RecordAppender {
  readonly chainId: string;
  readonly #o: Required<Omit<RecordWriterOptions, 'chainId' | 'observer'>> & { observer?: WriterObserver };
  #queue: Entry[] = [];
  #running = false;
  /** A new chain's links to its predecessors, until its first commit stores them. */
  #links: ChainLink[] | undefined;
  /** When the commit in progress started (ms since the epoch), or null. */
  #commitStarted: number | null = null;
  #head: { lastSeq: number; headHash: string } | null;
  #headStale = true;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #idleResolve: (() => void) | undefined;

  constructor(o: RecordWriterOptions) {
    this.chainId = o.chainId ?? `c${base32Encode(randomBytes(10)).toLowerCase()}`;
    this.#o = { maxBatch: 2000, maxBatchSubjects: 50_000, maxBacklog: 100_000, appendTimeoutMs: 10_000, ...o };
    this.#head = null;
  }

  /** Resolves when the record is durable; rejects with UNAVAILABLE when it cannot be. */
  append(draft: AccessRecordDraft): Promise<void> {
    if (this.#closed) return Promise.reject(new GatewayError('UNAVAILABLE', 'the gateway is shutting down'));
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

  /** True while a commit has been running longer than the append timeout: the store is stalled. */
  stalled(now = Date.now()): boolean {
    return this.#commitStarted !== null && now - this.#commitStarted > this.#o.appendTimeoutMs;
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

  async #loop(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#batchLength());
      this.#o.observer?.backlog(this.#queue.length);
      const started = process.hrtime.bigint();
      this.#commitStarted = Date.now();
      try {
        if (this.#headStale) {
          const head = await this.#o.store.head(this.chainId);
          if (head) {
            this.#head = head;
            this.#links = undefined;
          } else {
            // A new chain: it commits, in its genesis, to the head of every chain already stored.
            this.#links = (await this.#o.store.heads()).filter((l) => l.predecessor !== this.chainId);
            this.#head = { lastSeq: 0, headHash: genesisHash(this.chainId, this.#links) };
          }
          this.#headStale = false;
        }
        const head = this.#head!;
        const linked = chain(this.chainId, head.lastSeq, head.headHash, batch.map((e) => e.draft));
        const last = linked[linked.length - 1]!;
        const signature = await this.#o.signer.sign(sealMessage(this.chainId, last.seq, last.hash));
        const seal = sealOf(this.chainId, last.seq, last.hash, signature, this.#o.signer.keyId, Date.now());
        await this.#o.store.commit(linked, seal, this.#links);
        this.#links = undefined;
        this.#head = { lastSeq: last.seq, headHash: last.hash };
        this.#o.observer?.batchCommitted(batch.length, Number(process.hrtime.bigint() - started) / 1e9);
        for (const e of batch) e.resolve();
      } catch (err) {
        this.#headStale = true;
        this.#o.observer?.batchFailed(batch.length);
        this.#o.log.error('access record batch not committed; its requests fail', { size: batch.length, err });
        const e = new GatewayError('UNAVAILABLE', 'the access record could not be written; nothing was released', { cause: err });
        for (const x of batch) x.reject(e);
      } finally {
        this.#commitStarted = null;
      }
    }
    this.#running = false;
    this.#idleResolve?.();
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

  /** Stops taking records and waits for the queued ones to be committed (or to fail). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
  }
}
