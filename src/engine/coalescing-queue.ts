/**
 * The pooled engine's queue, as pure logic (no threads): requests for the same operation and agency that
 * arrive while they wait are coalesced into one batch of up to `batchSize` items, and a request larger than that
 * is cut into batches, holding one queue slot and going back to the end of the queue after each cut so other
 * callers interleave with it. A request answers once, with its results or an error, and its items that have not
 * been taken into a batch are dropped when it is settled early (cancelled, or the engine closes).
 */

export type Op = 'issue' | 'decode';

/** One caller's request. `I` is an input item, `O` an output item. */
export interface QueuedRequest<I = unknown, O = unknown> {
  /** Items to send: numbers to issue, or the codes of the right length to decode. */
  readonly input: ArrayLike<I> & { readonly length: number };
  /** For decode: the caller's index of each input code, when some codes were answered without the pool. */
  readonly index: number[] | null;
  readonly out: O[];
  /** Items taken into batches so far, and items answered so far. */
  sent: number;
  answered: number;
  settled: boolean;
  entry: Entry | null;
  resolve(v: O[]): void;
  reject(e: unknown): void;
  unlisten(): void;
}

/** One queue slot: small requests of one op and agency coalescing, or one bulk request being cut. */
interface Entry {
  readonly op: Op;
  readonly agency: string;
  readonly requests: QueuedRequest[];
  /** Index of the first request with items not yet sent. */
  head: number;
  /** Items of live requests not yet sent. */
  pending: number;
  /** Whether small requests may still join (it is the open entry of its key). */
  open: boolean;
}

/** A slice [from, to) of one request's items, taken into a batch. */
export interface Segment {
  readonly req: QueuedRequest;
  readonly from: number;
  readonly to: number;
}

export interface Batch {
  readonly op: Op;
  readonly agency: string;
  readonly segments: Segment[];
  readonly size: number;
}

export class CoalescingQueue {
  readonly #queue: Entry[] = [];
  /** The entry that small requests of each operation and agency join, while it waits. */
  readonly #open = { issue: new Map<string, Entry>(), decode: new Map<string, Entry>() };

  constructor(private readonly batchSize: number) {}

  /** Queue slots in use. */
  get length(): number {
    return this.#queue.length;
  }

  /**
   * Queues a request of `n > 0` items. When it needs a new slot and `mayOpen(slotsInUse)` says no, it is not
   * queued and this returns false (the caller refuses it).
   */
  add(op: Op, agency: string, req: QueuedRequest, mayOpen: (slotsInUse: number) => boolean): boolean {
    const n = req.input.length;
    const open = this.#open[op];
    let entry = open.get(agency);
    if (!entry || entry.pending + n > this.batchSize) {
      if (!mayOpen(this.#queue.length)) return false;
      entry = { op, agency, requests: [], head: 0, pending: 0, open: n < this.batchSize };
      if (entry.open) open.set(agency, entry);
      this.#queue.push(entry);
    }
    req.entry = entry;
    entry.requests.push(req);
    entry.pending += n;
    return true;
  }

  /** The next batch: up to batchSize unsent items of the first slot's live requests, in order. */
  next(): Batch | undefined {
    while (this.#queue.length > 0) {
      const entry = this.#queue.shift()!;
      if (entry.open) {
        entry.open = false;
        this.#open[entry.op].delete(entry.agency);
      }
      const segments = this.#cut(entry);
      if (entry.pending > 0) this.#queue.push(entry);
      else entry.requests.length = 0;
      if (segments.length > 0) {
        let size = 0;
        for (const s of segments) size += s.to - s.from;
        return { op: entry.op, agency: entry.agency, segments, size };
      }
    }
    return undefined;
  }

  #cut(entry: Entry): Segment[] {
    const segments: Segment[] = [];
    let room = this.batchSize;
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

  /** Answers a request once (null: with its results) and drops its unsent items. */
  settle(req: QueuedRequest, error: unknown): void {
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

  /** Fails every queued request with `error` and empties the queue. */
  drain(error: unknown): void {
    for (const entry of this.#queue.splice(0)) for (const r of [...entry.requests]) this.settle(r, error);
    this.#open.issue.clear();
    this.#open.decode.clear();
  }
}
