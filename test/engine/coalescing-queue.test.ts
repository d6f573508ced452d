/** The pooled engine's queue on its own: coalescing, cutting, fairness, early settling. */
import { describe, expect, it } from 'vitest';
import { CoalescingQueue, type QueuedRequest } from '../../src/engine/coalescing-queue.js';

function request(n: number, outcome: { value?: unknown[]; error?: unknown } = {}): QueuedRequest<number, string> {
  return {
    input: Array.from({ length: n }, (_, i) => i),
    index: null,
    out: new Array<string>(n),
    sent: 0,
    answered: 0,
    settled: false,
    entry: null,
    resolve: (v) => void (outcome.value = v),
    reject: (e) => void (outcome.error = e),
    unlisten: () => undefined,
  };
}
const always = () => true;

describe('CoalescingQueue', () => {
  it('coalesces small requests of one op and agency into one batch, and keeps agencies apart', () => {
    const q = new CoalescingQueue(100);
    const a = request(3);
    const b = request(5);
    const c = request(2);
    q.add('issue', 'tax', a as QueuedRequest, always);
    q.add('issue', 'tax', b as QueuedRequest, always);
    q.add('issue', 'pension', c as QueuedRequest, always);
    expect(q.length).toBe(2);
    const first = q.next()!;
    expect(first).toMatchObject({ op: 'issue', agency: 'tax', size: 8 });
    expect(first.segments.map((s) => [s.from, s.to])).toEqual([
      [0, 3],
      [0, 5],
    ]);
    expect(q.next()).toMatchObject({ agency: 'pension', size: 2 });
    expect(q.next()).toBeUndefined();
  });

  it('cuts a bulk request into batches and lets other callers in between', () => {
    const q = new CoalescingQueue(4);
    const bulk = request(10);
    q.add('issue', 'tax', bulk as QueuedRequest, always);
    q.add('issue', 'pension', request(1) as QueuedRequest, always);
    const order = [];
    for (let b = q.next(); b; b = q.next()) order.push(`${b.agency}:${b.size}`);
    expect(order).toEqual(['tax:4', 'pension:1', 'tax:4', 'tax:2']);
  });

  it('refuses a request that needs a new slot when the caller says no', () => {
    const q = new CoalescingQueue(4);
    expect(q.add('decode', 'tax', request(2) as QueuedRequest, () => false)).toBe(false);
    expect(q.add('decode', 'tax', request(2) as QueuedRequest, always)).toBe(true);
    // Joins the open slot, so no new slot is asked for.
    expect(q.add('decode', 'tax', request(1) as QueuedRequest, () => false)).toBe(true);
  });

  it('drops the unsent items of a request settled early, and answers it once', () => {
    const q = new CoalescingQueue(4);
    const out: { value?: unknown[]; error?: unknown } = {};
    const bulk = request(10, out);
    q.add('issue', 'tax', bulk as QueuedRequest, always);
    q.next();
    q.settle(bulk as QueuedRequest, new Error('cancelled'));
    q.settle(bulk as QueuedRequest, null);
    expect(out).toEqual({ error: new Error('cancelled') });
    expect(q.next()).toBeUndefined();
    expect(q.length).toBe(0);
  });

  it('drain fails everything queued', () => {
    const q = new CoalescingQueue(4);
    const outs = [{}, {}] as { error?: unknown }[];
    q.add('issue', 'tax', request(2, outs[0]) as QueuedRequest, always);
    q.add('decode', 'tax', request(2, outs[1]) as QueuedRequest, always);
    q.drain('closed');
    expect(outs.map((o) => o.error)).toEqual(['closed', 'closed']);
    expect(q.length).toBe(0);
  });
});
