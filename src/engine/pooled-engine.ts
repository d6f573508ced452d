/**
 * The mapping engine on worker threads (piscina; the handlers are in mapping-worker.ts). A single mapping (~2 µs)
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
 *  - A caller whose AbortSignal fires is answered at once; its items that have not reached a thread are
 *    dropped. Signals are deliberately not handed to piscina: aborting a running piscina task terminates the
 *    thread, which would also lose the other callers coalesced into that task.
 *
 * Codes and decode results are identical to the InlineEngine's for the same keys.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Piscina, move, transferableSymbol, valueSymbol } from 'piscina';
import { AgencyCodec, CODE_LENGTH, type Decoded, type DecodeProblem, type MasterKeys } from '../core/agency-code.js';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import { workerFile } from '../worker-file.js';
import type { MappingEngine } from './mapping-engine.js';
import { PROBLEM_CODES, VERSION_SHIFT, type DecodeTask, type IssueTask, type MappingWorkerData } from './mapping-worker.js';

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

type Op = 'issue' | 'decode';

interface Request {
  /** Items to send: numbers to issue (a snapshot of the caller's), or the codes of the right length to decode. */
  readonly input: Float64Array | number[] | string[];
  /** For decode: the caller's index of each input code, when some codes were answered without the pool. */
  readonly index: number[] | null;
  readonly out: string[] | Decoded[];
  /** Items handed to tasks so far, and items answered so far. */
  sent: number;
  answered: number;
  settled: boolean;
  entry: Entry | null;
  resolve(v: string[] | Decoded[]): void;
  reject(e: unknown): void;
  unlisten(): void;
}

/** One queue slot: small requests of one op and agency coalescing, or one bulk request being cut. */
interface Entry {
  readonly op: Op;
  readonly agency: string;
  readonly requests: Request[];
  /** Index of the first request with items not yet sent. */
  head: number;
  /** Items of live requests not yet sent. */
  pending: number;
  /** Whether small requests may still join (it is the open entry of its key). */
  open: boolean;
}

interface Segment {
  readonly req: Request;
  readonly from: number;
  readonly to: number;
}

export class PooledEngine implements MappingEngine {
  readonly kind = 'pool' as const;
  readonly #pool: Piscina;
  readonly #threads: number;
  readonly #maxQueue: number;
  readonly #batch: number;
  readonly #observer: PoolObserver | undefined;
  readonly #queue: Entry[] = [];
  /** The entry that small requests of each operation and agency join, while it waits. */
  readonly #open = { issue: new Map<string, Entry>(), decode: new Map<string, Entry>() };
  #inFlight = 0;
  #scheduled = false;
  #closed = false;

  private constructor(keys: MasterKeys, opts: PooledEngineOptions) {
    new AgencyCodec(keys); // the same checks (and RangeErrors) as the inline engine, before any thread starts
    const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
    const maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
    const batch = opts.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError('maxQueue must be a non-negative integer');
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError('batchSize must be a positive integer');
    this.#threads = threads;
    this.#maxQueue = maxQueue;
    this.#batch = batch;
    this.#observer = opts.observer;
    // Fresh copies: a key held in a Buffer from Node's shared pool would otherwise clone the whole pool slab.
    const workerData: MappingWorkerData = {
      current: keys.current,
      masters: [...keys.masters].map(([v, k]) => [v, new Uint8Array(k)] as const),
    };
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
  static async create(keys: MasterKeys, opts: PooledEngineOptions = {}): Promise<PooledEngine> {
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
    return this.#submit('issue', agency, input, null, new Array<string>(n), signal) as Promise<string[]>;
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
    return this.#submit('decode', agency, input, index, out, signal) as Promise<Decoded[]>;
  }

  stats(): PooledEngineStats {
    const free = Math.max(0, this.#threads * DEPTH - this.#inFlight);
    return {
      queueSize: Math.max(0, this.#queue.length - free) + this.#pool.queueSize,
      utilization: this.#pool.utilization,
      completed: this.#pool.completed,
      threads: this.#pool.threads.length,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const gone = closedError();
    for (const entry of this.#queue.splice(0)) for (const r of [...entry.requests]) this.#settle(r, gone);
    this.#open.issue.clear();
    this.#open.decode.clear();
    await this.#pool.destroy();
  }

  #submit(op: Op, agency: string, input: Float64Array | number[] | string[], index: number[] | null, out: string[] | Decoded[], signal: AbortSignal | undefined): Promise<string[] | Decoded[]> {
    if (this.#closed) return Promise.reject(closedError());
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    const n = input.length;
    if (n === 0) return Promise.resolve(out);

    const open = this.#open[op];
    let entry = open.get(agency);
    if (!entry || entry.pending + n > this.#batch) {
      // A new task is needed: refuse if it would wait behind a full queue.
      const free = Math.max(0, this.#threads * DEPTH - this.#inFlight);
      if (this.#queue.length >= this.#maxQueue + free) return Promise.reject(atCapacity());
      entry = { op, agency, requests: [], head: 0, pending: 0, open: n < this.#batch };
      if (entry.open) open.set(agency, entry);
      this.#queue.push(entry);
    }

    return new Promise<string[] | Decoded[]>((resolve, reject) => {
      const req: Request = { input, index, out, sent: 0, answered: 0, settled: false, entry, resolve, reject, unlisten: noop };
      entry.requests.push(req);
      entry.pending += n;
      if (signal) {
        const onAbort = () => this.#settle(req, cancelled(signal));
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
    while (!this.#closed && this.#inFlight < this.#threads * DEPTH && this.#queue.length > 0) {
      const entry = this.#queue.shift()!;
      if (entry.open) {
        entry.open = false;
        this.#open[entry.op].delete(entry.agency);
      }
      const segments = this.#cut(entry);
      if (entry.pending > 0) this.#queue.push(entry);
      else entry.requests.length = 0;
      if (segments.length > 0) this.#run(entry, segments);
    }
  }

  /** Takes up to batchSize unsent items from the entry's live requests, in order. */
  #cut(entry: Entry): Segment[] {
    const segments: Segment[] = [];
    let room = this.#batch;
    while (room > 0 && entry.head < entry.requests.length) {
      const req = entry.requests[entry.head]!;
      if (req.settled) {
        entry.head++;
        continue;
      }
      const take = Math.min(room, req.input.length - req.sent);
      segments.push({ req, from: req.sent, to: req.sent + take });
      req.sent += take;
      entry.pending -= take;
      room -= take;
      if (req.sent === req.input.length) {
        req.entry = null;
        entry.head++;
      }
    }
    return segments;
  }

  #run(entry: Entry, segments: Segment[]): void {
    let size = 0;
    for (const s of segments) size += s.to - s.from;
    let task: ReturnType<typeof move> | DecodeTask;
    if (entry.op === 'issue') {
      const numbers = new Float64Array(size);
      let at = 0;
      for (const s of segments) {
        const input = s.req.input as Float64Array | number[];
        if (s.to - s.from > SMALL && input instanceof Float64Array) numbers.set(input.subarray(s.from, s.to), at);
        else for (let i = s.from; i < s.to; i++) numbers[at + i - s.from] = input[i]!;
        at += s.to - s.from;
      }
      const value: IssueTask = { agency: entry.agency, numbers };
      // Moved, not copied: the worker gets the numbers' buffer and this side no longer holds it.
      task = move({ [transferableSymbol]: numbers.buffer, [valueSymbol]: value });
    } else {
      let codes = '';
      for (const s of segments) codes += (s.req.input as string[]).slice(s.from, s.to).join('');
      task = { agency: entry.agency, codes, count: size };
    }

    this.#inFlight++;
    const started = performance.now();
    this.#pool.run(task, { name: entry.op }).then(
      (result: string | Float64Array) => {
        this.#inFlight--;
        this.#observe(started, size);
        let at = 0;
        for (const s of segments) {
          if (!s.req.settled) {
            if (entry.op === 'issue') writeCodes(s, result as string, at);
            else writeDecoded(s, result as Float64Array, at);
            s.req.answered += s.to - s.from;
            if (s.req.answered === s.req.input.length) this.#settle(s.req, null);
          }
          at += s.to - s.from;
        }
        this.#pump();
      },
      (e: unknown) => {
        this.#inFlight--;
        this.#observe(started, size);
        const err = this.#closed ? closedError() : taskError(e);
        for (const s of segments) this.#settle(s.req, err);
        this.#pump();
      },
    );
  }

  #observe(started: number, size: number): void {
    notify(this.#observer, (o) => o.poolTask((performance.now() - started) / 1000, size));
  }

  /** Answers a request once (null: with its results) and drops its unsent items. */
  #settle(req: Request, error: unknown): void {
    if (req.settled) return;
    req.settled = true;
    req.unlisten();
    const entry = req.entry;
    if (entry) {
      req.entry = null;
      entry.pending -= req.input.length - req.sent;
      if (entry.pending === 0) {
        const at = this.#queue.indexOf(entry);
        if (at >= 0) this.#queue.splice(at, 1);
        if (entry.open) this.#open[entry.op].delete(entry.agency);
        entry.requests.length = 0;
      }
    }
    if (error === null) req.resolve(req.out);
    else req.reject(error);
  }
}

function writeCodes(s: Segment, joined: string, at: number): void {
  const out = s.req.out as string[];
  for (let i = s.from, p = at * CODE_LENGTH; i < s.to; i++, p += CODE_LENGTH) out[i] = joined.slice(p, p + CODE_LENGTH);
}

const PROBLEMS = new Map<number, DecodeProblem>(Object.entries(PROBLEM_CODES).map(([k, v]) => [v, k as DecodeProblem]));

function writeDecoded(s: Segment, packed: Float64Array, at: number): void {
  const out = s.req.out as Decoded[];
  const index = s.req.index;
  for (let i = s.from, p = at; i < s.to; i++, p++) {
    const v = packed[p]!;
    const d: Decoded =
      v >= 0
        ? { ok: true, number: v % VERSION_SHIFT, version: Math.floor(v / VERSION_SHIFT) }
        : { ok: false, problem: PROBLEMS.get(v) ?? 'format' };
    out[index ? index[i]! : i] = d;
  }
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
