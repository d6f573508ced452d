import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConnection } from '../../src/redis/redis-connection.js';
import { closedPort, connector, redisRun, testPrefix, up } from '../helpers/redis.js';
import { parseRateLimitSpec, RateLimiter } from '../../src/limits/rate-limiter.js';

const URL = redisRun().url;
const prefix = testPrefix('rate-limiter');
const conns: RedisConnection[] = [];
const connect = connector(URL, prefix, conns);




describe('rate limiter', () => {
  let a: RedisConnection;
  let b: RedisConnection;

  beforeAll(async () => {
    a = connect();
    b = connect();
    await Promise.all([up(a), up(b)]);
  });

  afterAll(async () => {
    const ks = await a.client.keys(`${prefix}*`);
    if (ks.length) await a.client.del(...ks);
    await Promise.all(conns.map((c) => c.close()));
  });

  it('is shared between replicas: together they pass the burst, no more', async () => {
    const fallbacks: string[] = [];
    const opts = { default: { ratePerSec: 0.01, burst: 10 }, onFallback: (x: string) => void fallbacks.push(x) };
    const r1 = new RateLimiter({ ...opts, redis: a });
    const r2 = new RateLimiter({ ...opts, redis: b });
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await (i % 2 ? r1 : r2).take('pension'));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
    expect(results.slice(0, 10).every((r) => r.allowed)).toBe(true);
    for (const r of results.slice(10)) {
      expect(r.allowed).toBe(false);
      expect(r.retryAfterMs).toBeGreaterThan(50_000); // 1 token per 100 s
    }
    expect(fallbacks).toEqual([]);
    // The key is the agency id, the value a timestamp: nothing personal.
    const ks = await a.client.keys(`${prefix}*`);
    expect(ks).toEqual([`${prefix}rl:pension`]);
  });

  it('applies per-agency limits and the default, with costs, and refills', async () => {
    const r = new RateLimiter({ redis: a, default: { ratePerSec: 0.01, burst: 2 }, perAgency: { tax: { ratePerSec: 20, burst: 5 } } });
    expect((await r.take('welfare', 2)).allowed).toBe(true);
    expect((await r.take('welfare')).allowed).toBe(false);
    expect((await r.take('tax', 5)).allowed).toBe(true);
    const denied = await r.take('tax', 1);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(50);
    await new Promise((res) => setTimeout(res, denied.retryAfterMs + 20));
    expect((await r.take('tax', 1)).allowed).toBe(true);
    expect(await r.take('tax', 6)).toEqual({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
  });

  it('falls back to a local bucket divided by the replica count when Redis is down, without throwing', async () => {
    const dead = connect(`redis://127.0.0.1:${await closedPort()}`);
    const fallbacks: [string, string][] = [];
    const r = new RateLimiter({
      redis: dead,
      default: { ratePerSec: 0.01, burst: 10 },
      expectedReplicas: 2,
      onFallback: (agency, reason) => void fallbacks.push([agency, reason]),
    });
    const t0 = Date.now();
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await r.take('pension'));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(results.filter((x) => x.allowed)).toHaveLength(5);
    expect(fallbacks).toHaveLength(8);
    expect(fallbacks[0]).toEqual(['pension', 'unavailable']);
  });

  it('runs its script inside a pending auto-pipeline, even after SCRIPT FLUSH (NOSCRIPT → EVAL)', async () => {
    // Regression: with ioredis defineCommand, a script call queued in the same tick as other commands crashed
    // the process with an uncaught "results[i] is not iterable" (ioredis #1931).
    await a.client.script('FLUSH');
    const fallbacks: string[] = [];
    const r = new RateLimiter({ redis: a, default: { ratePerSec: 1000, burst: 1000 }, onFallback: (_x, why) => void fallbacks.push(why) });
    const gets = Array.from({ length: 20 }, (_, i) => a.client.get(`${prefix}nothing-${i}`));
    const takes = Array.from({ length: 20 }, () => r.take('welfare-2'));
    const [g, t] = await Promise.all([Promise.all(gets), Promise.all(takes)]);
    expect(g.every((x) => x === null)).toBe(true);
    expect(t.every((x) => x.allowed)).toBe(true);
    expect(fallbacks).toEqual([]);
  });

  it('works with no Redis configured', async () => {
    // One token per 100 s: no refill between the takes however slow the machine (at 1000/s a token came back
    // every millisecond, and the fourth take sometimes passed).
    const r = new RateLimiter({ default: { ratePerSec: 0.01, burst: 3 } });
    const got = await Promise.all([1, 2, 3, 4].map(() => r.take('x')));
    expect(got.map((g) => g.allowed)).toEqual([true, true, true, false]);
  });

  it('parses LINKGW_RATE_LIMIT', () => {
    const p = parseRateLimitSpec('default=50/100, tax-agency=200/400,pension=5');
    expect(p.default).toEqual({ ratePerSec: 50, burst: 100 });
    expect(p.perAgency.get('tax-agency')).toEqual({ ratePerSec: 200, burst: 400 });
    expect(p.perAgency.get('pension')).toEqual({ ratePerSec: 5, burst: 5 });
    expect(() => parseRateLimitSpec('tax=abc')).toThrow();
    expect(() => parseRateLimitSpec('tax=0')).toThrow();
  });
});
