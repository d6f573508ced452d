import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32Encode } from '../../src/core/base32.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { GatewayError } from '../../src/core/errors.js';
import { InlineEngine } from '../../src/engine/mapping-engine.js';
import { PooledEngine, type PooledEngineOptions } from '../../src/engine/pooled-engine.js';
import { population } from '../helpers/population.js';

const keys = () => ({ current: 1, masters: new Map([[1, randomBytes(32)]]) });
const values = (n: number, seed = 0) =>
  population(n, seed).map((s) => {
    const c = checkPersonalNumber(s);
    if (!c.ok) throw new Error('bad test number');
    return c.value;
  });

/** An engine that records the size of every task it runs. */
async function observed(k: ReturnType<typeof keys>, opts: PooledEngineOptions = {}) {
  const sizes: number[] = [];
  const engine = await PooledEngine.create(k, { threads: 1, ...opts, observer: { poolTask: (_s, size) => void sizes.push(size) } });
  return { engine, sizes };
}

/** Where two long lists first differ (-1: nowhere), so that a failure does not make vitest diff 100,000 items. */
function firstDifference(a: readonly unknown[], b: readonly unknown[]): number {
  const key = (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x, Object.keys(x as object).sort()));
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (i >= a.length || i >= b.length || key(a[i]) !== key(b[i])) return i;
  return -1;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('pooled engine', () => {
  const k = keys();
  const inline = new InlineEngine(k);
  let pool: PooledEngine;

  beforeAll(async () => {
    pool = await PooledEngine.create(k, { threads: 2 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('is a pool with live threads', () => {
    expect(pool.kind).toBe('pool');
    expect(pool.stats()).toMatchObject({ threads: 2, queueSize: 0 });
  });

  it('issues the same code as the inline engine for a single number', async () => {
    for (const n of values(20)) {
      for (const agency of ['pension', 'tax']) expect(await pool.issue(agency, [n])).toEqual(await inline.issue(agency, [n]));
    }
  });

  it('coalesces concurrent single requests into one task, each caller getting its own code', async () => {
    const { engine, sizes } = await observed(k);
    try {
      const ns = values(300, 1);
      const got = await Promise.all(ns.map((n) => engine.issue('welfare', [n])));
      expect(got.map((c) => c.length)).toEqual(ns.map(() => 1));
      expect(firstDifference(got.flat(), await inline.issue('welfare', ns))).toBe(-1);
      expect(sizes).toEqual([300]);
    } finally {
      await engine.close();
    }
  });

  it('keeps agencies and operations apart when coalescing', async () => {
    const { engine, sizes } = await observed(k);
    try {
      const ns = values(50, 2);
      const codes = await inline.issue('tax', ns);
      const [tax, pension, decoded] = await Promise.all([
        Promise.all(ns.map((n) => engine.issue('tax', [n]))),
        Promise.all(ns.map((n) => engine.issue('pension', [n]))),
        Promise.all(codes.map((c) => engine.decode('tax', [c]))),
      ]);
      expect(tax.flat()).toEqual(codes);
      expect(pension.flat()).toEqual(await inline.issue('pension', ns));
      expect(decoded.flat()).toEqual(ns.map((number) => ({ ok: true, number, version: 1 })));
      expect(sizes.sort()).toEqual([50, 50, 50]);
    } finally {
      await engine.close();
    }
  });

  it('issues 100,000 codes in bulk identical to the inline engine, in tasks of at most batchSize', async () => {
    const { engine, sizes } = await observed(k, { threads: 2, batchSize: 4096 });
    try {
      const ns = values(100_000, 3);
      const got = await engine.issue('pension', ns);
      expect(got).toHaveLength(ns.length);
      expect(firstDifference(got, await inline.issue('pension', ns))).toBe(-1);
      expect(sizes).toHaveLength(Math.ceil(100_000 / 4096));
      expect(Math.max(...sizes)).toBe(4096);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(100_000);
    } finally {
      await engine.close();
    }
  });

  it('decodes like the inline engine, rejecting forged, altered, foreign and malformed codes', async () => {
    const ns = values(5000, 4);
    const codes = await inline.issue('tax', ns);
    const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const altered = codes.slice(0, 200).map((c, i) => {
      const at = i % c.length;
      const ch = alphabet[(alphabet.indexOf(c[at]!) + 1 + (i % 31)) % 32]!;
      return c.slice(0, at) + ch + c.slice(at + 1);
    });
    const forged = Array.from({ length: 500 }, () => base32Encode(Buffer.concat([Buffer.from([1]), randomBytes(16)])));
    const unknownVersion = Array.from({ length: 20 }, () => base32Encode(Buffer.concat([Buffer.from([9]), randomBytes(16)])));
    const foreign = await inline.issue('pension', ns.slice(0, 200));
    const garbage = ['', 'x', 'not a code', '0'.repeat(27), '0'.repeat(29), '!'.repeat(28), '\u0000'.repeat(28), 'ä'.repeat(28)];
    const lower = codes.slice(0, 50).map((c) => c.toLowerCase());
    const all = [...garbage, ...codes, ...altered, ...forged, ...unknownVersion, ...foreign, ...lower, ...garbage];

    const got = await pool.decode('tax', all);
    expect(firstDifference(got, await inline.decode('tax', all))).toBe(-1);
    const authentic = ns.map((number) => ({ ok: true, number, version: 1 }));
    expect(firstDifference(got.slice(garbage.length, garbage.length + codes.length), authentic)).toBe(-1);
    const bad = [...altered, ...forged, ...unknownVersion, ...foreign];
    expect(await pool.decode('tax', bad)).toSatisfy((ds: { ok: boolean }[]) => ds.every((d) => !d.ok));
    expect(await pool.decode('tax', garbage)).toEqual(garbage.map(() => ({ ok: false, problem: 'format' })));
    expect(await pool.decode('tax', unknownVersion)).toEqual(unknownVersion.map(() => ({ ok: false, problem: 'unknown-key-version' })));
    expect(await pool.decode('tax', foreign)).toEqual(foreign.map(() => ({ ok: false, problem: 'not-authentic' })));
  });

  it('decodes across a key rotation with the right version', async () => {
    const m1 = randomBytes(32);
    const before = new InlineEngine({ current: 1, masters: new Map([[1, m1]]) });
    const rotated = { current: 200, masters: new Map([[1, m1], [200, randomBytes(32)]]) };
    const after = await PooledEngine.create(rotated, { threads: 1 });
    try {
      const ns = values(100, 5);
      const old = await before.issue('tax', ns);
      const fresh = await after.issue('tax', ns);
      expect(fresh).toEqual(await new InlineEngine(rotated).issue('tax', ns));
      expect(await after.decode('tax', [...old, ...fresh])).toEqual([
        ...ns.map((number) => ({ ok: true, number, version: 1 })),
        ...ns.map((number) => ({ ok: true, number, version: 200 })),
      ]);
    } finally {
      await after.close();
    }
  });

  it('answers empty requests without a task', async () => {
    expect(await pool.issue('tax', [])).toEqual([]);
    expect(await pool.decode('tax', [])).toEqual([]);
    expect(await pool.decode('tax', ['short'])).toEqual([{ ok: false, problem: 'format' }]);
  });

  it('refuses a number that is not a personal number like the inline engine, without failing its neighbours', async () => {
    const good = values(2, 6);
    for (const bad of [1.5, -1, 1e12, Number.NaN]) {
      await expect(inline.issue('tax', [bad])).rejects.toThrow(RangeError);
      await expect(pool.issue('tax', [bad])).rejects.toThrow(RangeError);
    }
    const [a, b, c] = await Promise.allSettled([pool.issue('tax', [good[0]!]), pool.issue('tax', [good[1]!, 0.5]), pool.issue('tax', [good[1]!])]);
    expect(a).toEqual({ status: 'fulfilled', value: await inline.issue('tax', [good[0]!]) });
    expect(b.status).toBe('rejected');
    expect(c).toEqual({ status: 'fulfilled', value: await inline.issue('tax', [good[1]!]) });
  });

  it('refuses at once with RESOURCE_EXHAUSTED when the queue is full, and recovers', async () => {
    const { engine } = await observed(k, { threads: 1, maxQueue: 1, batchSize: 64 });
    try {
      const ns = values(1000, 7);
      // Each bulk call needs its own task; one for the thread and one waiting fit, the rest must be refused.
      const calls = Array.from({ length: 20 }, (_, i) => engine.issue(`agency-${i}`, ns));
      const settled = await Promise.allSettled(calls);
      const refused = settled.filter((s) => s.status === 'rejected');
      const served = settled.filter((s) => s.status === 'fulfilled');
      expect(served).toHaveLength(2);
      expect(refused).toHaveLength(18);
      for (const r of refused) {
        const e = (r as PromiseRejectedResult).reason as GatewayError;
        expect(e).toBeInstanceOf(GatewayError);
        expect(e.code).toBe('RESOURCE_EXHAUSTED');
        expect(e.message).toBe('the mapping engine is at capacity; retry shortly');
        expect(e.details).toEqual({ 'retry-after-ms': '50' });
      }
      for (const [i, s] of settled.entries()) {
        if (s.status === 'fulfilled') expect(firstDifference(s.value, await inline.issue(`agency-${i}`, ns))).toBe(-1);
      }
      // Singles for one agency share one task, so a burst of them is not refused.
      const singles = await Promise.all(ns.slice(0, 60).map((n) => engine.issue('tax', [n])));
      expect(singles.flat()).toEqual(await inline.issue('tax', ns.slice(0, 60)));
      expect(firstDifference(await engine.issue('agency-19', ns), await inline.issue('agency-19', ns))).toBe(-1);
      expect(engine.stats().queueSize).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it('drops the work of an already aborted signal', async () => {
    const { engine, sizes } = await observed(k);
    try {
      const ac = new AbortController();
      ac.abort();
      const e = await rejection(engine.issue('tax', values(7, 8), ac.signal));
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe('CANCELLED');
      await expect(engine.decode('tax', ['0'.repeat(28)], ac.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(await engine.issue('tax', values(1, 8))).toEqual(await inline.issue('tax', values(1, 8)));
      expect(sizes).toEqual([1]);
    } finally {
      await engine.close();
    }
  });

  it('passes a GatewayError abort reason through', async () => {
    const reason = new GatewayError('DEADLINE_EXCEEDED', 'the deadline has passed');
    expect(await rejection(pool.issue('tax', values(1), AbortSignal.abort(reason)))).toBe(reason);
    const ac = new AbortController();
    const p = pool.issue('tax', values(1), ac.signal);
    ac.abort(reason);
    expect(await rejection(p)).toBe(reason);
  });

  it('drops queued work when its signal aborts, keeping the callers coalesced with it', async () => {
    const { engine, sizes } = await observed(k);
    try {
      const ns = values(3, 9);
      const ac = new AbortController();
      const calls = [engine.issue('tax', [ns[0]!]), engine.issue('tax', [ns[1]!], ac.signal), engine.issue('tax', [ns[2]!])];
      const alone = rejection(engine.issue('pension', values(7, 9), ac.signal));
      ac.abort();
      const [a, b, c] = await Promise.allSettled(calls);
      expect(a).toEqual({ status: 'fulfilled', value: await inline.issue('tax', [ns[0]!]) });
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'CANCELLED' } });
      expect(c).toEqual({ status: 'fulfilled', value: await inline.issue('tax', [ns[2]!]) });
      expect(await alone).toMatchObject({ code: 'CANCELLED' });
      // The aborted single left the shared task; the aborted request of 7 never became a task.
      expect(sizes).toEqual([2]);
    } finally {
      await engine.close();
    }
  });

  it('stops cutting a bulk request once its signal aborts, answering the caller at once', async () => {
    const ac = new AbortController();
    const sizes: number[] = [];
    const engine = await PooledEngine.create(k, {
      threads: 1,
      batchSize: 100,
      observer: {
        poolTask: (_s, size) => {
          sizes.push(size);
          ac.abort();
        },
      },
    });
    try {
      const ns = values(10_000, 10);
      await expect(engine.issue('tax', ns, ac.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(await engine.issue('tax', [ns[0]!])).toEqual(await inline.issue('tax', [ns[0]!]));
      // Only the task already on the thread ran, not the 100 the request needed.
      expect(sizes).toEqual([100, 1]);
      expect(sizes.at(-1)).toBe(1);
    } finally {
      await engine.close();
    }
  });

  it('counts completed tasks', async () => {
    const before = pool.stats().completed;
    await pool.issue('tax', values(1));
    expect(pool.stats().completed).toBeGreaterThan(before);
    expect(pool.stats().utilization).toBeGreaterThanOrEqual(0);
  });

  it('closes: pending and later calls are refused, threads are gone, closing twice is harmless', async () => {
    const engine = await PooledEngine.create(k, { threads: 1, batchSize: 64 });
    const pending = rejection(engine.issue('tax', values(5000, 11)));
    await engine.close();
    expect(await pending).toMatchObject({ code: 'UNAVAILABLE' });
    await expect(engine.issue('tax', values(1))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(engine.decode('tax', ['0'.repeat(28)])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(engine.stats().threads).toBe(0);
    await engine.close();
  });

  it('closes with tasks on the thread: their callers are refused, not left hanging', async () => {
    let closing: Promise<void> | undefined;
    const engine: PooledEngine = await PooledEngine.create(k, {
      threads: 1,
      batchSize: 64,
      observer: {
        poolTask: () => {
          closing ??= engine.close();
        },
      },
    });
    const pending = rejection(engine.issue('tax', values(5000, 12)));
    expect(await pending).toMatchObject({ code: 'UNAVAILABLE' });
    await closing;
    expect(engine.stats().threads).toBe(0);
  });

  it('refuses bad keys like the inline engine', async () => {
    await expect(PooledEngine.create({ current: 2, masters: new Map([[1, randomBytes(32)]]) })).rejects.toThrow(RangeError);
    await expect(PooledEngine.create({ current: 1, masters: new Map([[1, randomBytes(16)]]) })).rejects.toThrow(RangeError);
  });
});
