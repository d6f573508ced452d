/**
 * The mapping engine on worker threads (piscina; the handlers are in mapping-worker.ts, the wire format in
 * mapping-wire.ts, the queue in coalescing-queue.ts). A single mapping (~2 µs)
 * is far cheaper inline than a pool round trip (35–130 µs on the 2-core box, see bench/micro/engine.bench.ts),
 * so work reaches the pool only in batches:
 *
 *  - Requests for the same operation and agency that arrive before the next dispatch (the same tick, or while
 *    every thread is busy) are coalesced into one task of up to `batchSize` items; each caller gets its slice.
 *  - A bulk request larger than that is cut into `batchSize` tasks. It holds one queue slot and goes back to
 *    the end of the queue after each cut, so other callers interleave with it.
 *  - At most one task per thread is handed to piscina at a time; the rest wait here, where they can still
 *    merge and be dropped. When `maxQueue` tasks are already waiting, a call that needs a new task is refused
 *    at once with RESOURCE_EXHAUSTED.
 *  - A whole bulk message (`issueBulk`, bulk-batch.ts, when the pool has the subject secret) is one task of
 *    its own, never cut or coalesced: its request bytes are moved to the thread and its response, persons run
 *    and commitment moved back. Bulk tasks and the others take turns for the threads, under the same bound.
 *  - A caller whose AbortSignal fires is answered at once; its items that have not reached a thread are
 *    dropped. Signals are deliberately not handed to piscina: aborting a running piscina task terminates the
 *    thread, which would also lose the other callers coalesced into that task.
 *
 * Codes and decode results are identical to the InlineEngine's for the same keys.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Piscina, move, transferableSymbol, valueSymbol } from 'piscina';
import { AgencyCodec, CODE_LENGTH, type Decoded } from '../core/agency-code.js';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import { workerFile } from '../worker-file.js';
import { CoalescingQueue, type Batch, type Op, type QueuedRequest, type Segment } from './coalescing-queue.js';
import { bulkCount, type BulkIssued, type BulkTask } from './bulk-batch.js';
import type { EngineKeys, MappingEngine } from './mapping-engine.js';
import { codeAt, unpackDecoded, type DecodeTask, type IssueTask, type MappingWorkerData } from './mapping-wire.js';

export interface PooledEngineOptions {
  /** Worker threads. Default: available cores − 1 (the event loop needs one), at least 1. */
  threads?: number;
  /** Tasks that may wait for a thread before calls are refused with RESOURCE_EXHAUSTED. Default: 64. */
  maxQueue?: number;
  /** Most items (numbers or codes) in one task. Default: 2048. */
  batchSize?: number;
  /** Told of every task. */
  observer?: PoolObserver;
}

export interface PoolObserver {
  /** A task ended: its round trip (queueing in piscina included) in seconds, and its item count. */
  poolTask(seconds: number, items: number): void;
}

export interface PooledEngineStats {
  /** Tasks waiting for a thread (here and in piscina). */
  queueSize: number;
  /** piscina's estimate of the share of thread time spent running tasks since start, 0..1. */
  utilization: number;
  /** Tasks completed (piscina's count). */
  completed: number;
  /** Live worker threads. */
  threads: number;
}

/**
 * Tasks handed to piscina per thread. With 2, a second task would wait in piscina, saving only a microtask hop
 * between tasks (no difference measurable on the 2-core box) while that task could neither merge nor be dropped.
 */
const DEPTH = 1;
const DEFAULT_MAX_QUEUE = 64;
const DEFAULT_BATCH = 2048;
const MAX_NUMBER = 1e12;
/** Up to this many numbers, a request is copied item by item rather than as a typed array. */
const SMALL = 16;

export class PooledEngine implements MappingEngine {
  readonly kind = 'pool' as const;
  readonly #pool: Piscina;
  readonly #threads: number;
  readonly #maxQueue: number;
  readonly #observer: PoolObserver | undefined;
  readonly #queue: CoalescingQueue;
  /** Whole bulk messages waiting for a thread, in arrival order. */
  readonly #bulk: BulkJob[] = [];
  /** Whether a bulk task goes next when both kinds wait. */
  #bulkTurn = true;
  #inFlight = 0;
  #scheduled = false;
  #closed = false;
  readonly issueBulk?: (task: BulkTask, signal?: AbortSignal) => Promise<BulkIssued>;

  private constructor(keys: EngineKeys, opts: PooledEngineOptions) {
    new AgencyCodec(keys); // the same checks (and RangeErrors) as the inline engine, before any thread starts
    const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
    const maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
    const batch = opts.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError('maxQueue must be a non-negative integer');
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError('batchSize must be a positive integer');
    this.#threads = threads;
    this.#maxQueue = maxQueue;
    this.#queue = new CoalescingQueue(batch);
    this.#observer = opts.observer;
    // Fresh copies: a key held in a Buffer from Node's shared pool would otherwise clone the whole pool slab.
    const workerData: MappingWorkerData = {
      current: keys.current,
      masters: [...keys.masters].map(([v, k]) => [v, new Uint8Array(k)] as const),
      ...(keys.subjectSecret ? { subjectSecret: new Uint8Array(keys.subjectSecret) } : {}),
    };
    if (keys.subjectSecret) this.issueBulk = (task, signal) => this.#issueBulk(task, signal);
    this.#pool = new Piscina({
      filename: workerFile(import.meta.url, 'mapping-worker').href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      // Never more than threads × DEPTH tasks are handed over, so this bound only guards against a bug here.
      maxQueue: threads * DEPTH,
      workerData,
    });
    // A task's failure reaches its callers; this only keeps a thread failing outside a task from being an
    // unhandled 'error' event (piscina replaces the thread).
    this.#pool.on('error', () => undefined);
  }

  /** Starts the threads and waits until each has loaded the worker module and its keys. */
  static async create(keys: EngineKeys, opts: PooledEngineOptions = {}): Promise<PooledEngine> {
    const engine = new PooledEngine(keys, opts);
    try {
      const warm: DecodeTask = { agency: 'warm-up', codes: '', count: 0 };
      await Promise.all(Array.from({ length: engine.#threads }, () => engine.#pool.run(warm, { name: 'decode' })));
    } catch (e) {
      await engine.#pool.destroy();
      throw e;
    }
    return engine;
  }

  issue(agency: string, numbers: readonly number[], signal?: AbortSignal): Promise<string[]> {
    const n = numbers.length;
    // A plain array is cheaper to make for a few numbers; a bulk request is held as doubles, ready to move.
    const input: Float64Array | number[] = n > SMALL ? new Float64Array(n) : new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const v = numbers[i]!;
      // Checked here, not only in the worker: one bad number must not fail the callers coalesced with it.
      if (!Number.isInteger(v) || v < 0 || v >= MAX_NUMBER) return Promise.reject(new RangeError('not a personal number'));
      input[i] = v;
    }
    return this.#submit('issue', agency, input, null, new Array<string>(n), signal);
  }

  decode(agency: string, codes: readonly string[], signal?: AbortSignal): Promise<Decoded[]> {
    const n = codes.length;
    const out = new Array<Decoded>(n);
    const input: string[] = [];
    let index: number[] | null = null;
    for (let i = 0; i < n; i++) {
      const c = codes[i];
      if (typeof c === 'string' && c.length === CODE_LENGTH) {
        input.push(c);
        index?.push(i);
      } else {
        // What the codec answers for anything that is not CODE_LENGTH characters, without a round trip.
        index ??= Array.from({ length: input.length }, (_, j) => j);
        out[i] = { ok: false, problem: 'format' };
      }
    }
    return this.#submit('decode', agency, input, index, out, signal);
  }

  stats(): PooledEngineStats {
    return {
      queueSize: Math.max(0, this.#queue.length + this.#bulk.length - this.#free()) + this.#pool.queueSize,
      utilization: this.#pool.utilization,
      completed: this.#pool.completed,
      threads: this.#pool.threads.length,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.drain(closedError());
    for (const job of this.#bulk.splice(0)) job.settle(closedError());
    await this.#pool.destroy();
  }

  /** Task slots not handed to piscina. */
  #free(): number {
    return Math.max(0, this.#threads * DEPTH - this.#inFlight);
  }

  #submit<I, O>(op: Op, agency: string, input: ArrayLike<I> & { length: number }, index: number[] | null, out: O[], signal: AbortSignal | undefined): Promise<O[]> {
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    if (input.length === 0) return Promise.resolve(out);
    return new Promise<O[]>((resolve, reject) => {
      const req: QueuedRequest<I, O> = { input, index, out, sent: 0, answered: 0, settled: false, entry: null, resolve, reject, unlisten: noop };
      // A new task is needed when the request cannot join a waiting one: refuse if it would wait behind a full queue.
      if (!this.#queue.add(op, agency, req as QueuedRequest, (used) => used + this.#bulk.length < this.#maxQueue + this.#free())) return reject(atCapacity());
      if (signal) {
        const onAbort = () => this.#queue.settle(req as QueuedRequest, cancelled(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        req.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#schedule();
    });
  }

  /** Dispatches on the next turn, so that requests arriving in this one coalesce first. */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (!this.#closed && this.#inFlight < this.#threads * DEPTH) {
      if (this.#bulk.length > 0 && (this.#bulkTurn || this.#queue.length === 0)) {
        this.#bulkTurn = false;
        this.#runBulk(this.#bulk.shift()!);
        continue;
      }
      this.#bulkTurn = true;
      const batch = this.#queue.next();
      if (batch) {
        this.#run(batch);
        continue;
      }
      if (this.#bulk.length === 0) return;
    }
  }

  #issueBulk(task: BulkTask, signal: AbortSignal | undefined): Promise<BulkIssued> {
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    if (this.#queue.length + this.#bulk.length >= this.#maxQueue + this.#free()) return Promise.reject(atCapacity());
    // The request's bytes are copied once into a buffer of their own, which is moved to the thread: the
    // received buffer may be a view into a larger one that must not be detached.
    const numbers = task.numbers;
    let owned: BulkTask = task;
    if ('bytes' in numbers) {
      const bytes = new Uint8Array(numbers.bytes.length);
      bytes.set(numbers.bytes);
      owned = { ...task, numbers: { bytes, count: numbers.count } };
    }
    return new Promise<BulkIssued>((resolve, reject) => {
      let unlisten = noop;
      const job: BulkJob = {
        task: owned,
        size: bulkCount(numbers),
        settled: false,
        settle: (error, result) => {
          if (job.settled) return;
          job.settled = true;
          unlisten();
          const at = this.#bulk.indexOf(job);
          if (at >= 0) this.#bulk.splice(at, 1);
          if (error === null) resolve(result!);
          else reject(error);
        },
      };
      if (signal) {
        const onAbort = () => job.settle(cancelled(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.#bulk.push(job);
      this.#schedule();
    });
  }

  #runBulk(job: BulkJob): void {
    const { task, size } = job;
    const moved = 'bytes' in task.numbers ? move({ [transferableSymbol]: task.numbers.bytes.buffer, [valueSymbol]: task }) : task;
    this.#inFlight++;
    const started = performance.now();
    this.#pool.run(moved, { name: 'issueBulk' }).then(
      (result: BulkIssued) => {
        this.#inFlight--;
        this.#observe(started, size);
        job.settle(null, result);
        this.#pump();
      },
      (e: unknown) => {
        this.#inFlight--;
        this.#observe(started, size);
        job.settle(this.#closed ? closedError() : taskError(e));
        this.#pump();
      },
    );
  }

  #run(batch: Batch): void {
    const { segments, size } = batch;
    let task: ReturnType<typeof move> | DecodeTask;
    if (batch.op === 'issue') {
      const numbers = new Float64Array(size);
      let at = 0;
      for (const s of segments) {
        const input = s.req.input as Float64Array | number[];
        if (s.to - s.from > SMALL && input instanceof Float64Array) numbers.set(input.subarray(s.from, s.to), at);
        else for (let i = s.from; i < s.to; i++) numbers[at + i - s.from] = input[i]!;
        at += s.to - s.from;
      }
      const value: IssueTask = { agency: batch.agency, numbers };
      // Moved, not copied: the worker gets the numbers' buffer and this side no longer holds it.
      task = move({ [transferableSymbol]: numbers.buffer, [valueSymbol]: value });
    } else {
      let codes = '';
      for (const s of segments) codes += (s.req.input as string[]).slice(s.from, s.to).join('');
      task = { agency: batch.agency, codes, count: size };
    }

    this.#inFlight++;
    const started = performance.now();
    this.#pool.run(task, { name: batch.op }).then(
      (result: string | Float64Array) => {
        this.#inFlight--;
        this.#observe(started, size);
        let at = 0;
        for (const s of segments) {
          if (!s.req.settled) {
            if (batch.op === 'issue') writeCodes(s, result as string, at);
            else writeDecoded(s, result as Float64Array, at);
            s.req.answered += s.to - s.from;
            if (s.req.answered === s.req.input.length) this.#queue.settle(s.req, null);
          }
          at += s.to - s.from;
        }
        this.#pump();
      },
      (e: unknown) => {
        this.#inFlight--;
        this.#observe(started, size);
        const err = this.#closed ? closedError() : taskError(e);
        for (const s of segments) this.#queue.settle(s.req, err);
        this.#pump();
      },
    );
  }

  #observe(started: number, size: number): void {
    notify(this.#observer, (o) => o.poolTask((performance.now() - started) / 1000, size));
  }
}

/** One whole bulk message waiting for, or on, a thread. */
interface BulkJob {
  readonly task: BulkTask;
  readonly size: number;
  settled: boolean;
  /** Answers the caller once (null: with `result`) and takes the job out of the queue if it still waits. */
  settle(error: unknown, result?: BulkIssued): void;
}

function writeCodes(s: Segment, joined: string, at: number): void {
  const out = s.req.out as string[];
  for (let i = s.from, p = at; i < s.to; i++, p++) out[i] = codeAt(joined, p);
}

function writeDecoded(s: Segment, packed: Float64Array, at: number): void {
  const out = s.req.out as Decoded[];
  const index = s.req.index;
  for (let i = s.from, p = at; i < s.to; i++, p++) out[index ? index[i]! : i] = unpackDecoded(packed[p]!);
}

function noop(): void {}

function atCapacity(): GatewayError {
  return new GatewayError('RESOURCE_EXHAUSTED', 'the mapping engine is at capacity; retry shortly', {
    details: { 'retry-after-ms': '50' },
  });
}

function closedError(): GatewayError {
  return new GatewayError('UNAVAILABLE', 'the mapping engine is closed');
}

function cancelled(signal: AbortSignal): GatewayError {
  const reason: unknown = signal.reason;
  return reason instanceof GatewayError ? reason : new GatewayError('CANCELLED', 'the request was cancelled', { cause: reason });
}

function taskError(e: unknown): GatewayError {
  // piscina's own refusal when its queue is full (it has no error codes, only this message).
  if (e instanceof Error && e.message === 'Task queue is at limit') return atCapacity();
  return new GatewayError('INTERNAL', 'the mapping engine failed', { cause: e });
}
