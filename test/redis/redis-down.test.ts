/**
 * Redis that stops answering. A TCP proxy in front of the real Redis stops forwarding on demand: the client stays
 * connected but gets no replies, like a Redis stalled by CLIENT PAUSE, but without pausing the server for the
 * other test files running at the same time. A closed port covers "no Redis at all".
 */
import { randomBytes } from 'node:crypto';
import { closedPort, redisRun, removeKeys, testPrefix, until } from '../helpers/redis.js';
import { FreezingProxy } from '../helpers/freezing-proxy.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { ConversionCache } from '../../src/cache/conversion-cache.js';
import { CachedEngine } from '../../src/engine/cached-engine.js';
import { InlineEngine } from '../../src/engine/mapping-engine.js';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.js';
import { RateLimiter } from '../../src/limits/rate-limiter.js';
import { KeyedSealer } from '../../src/core/keyed-sealer.js';
import { RedisConnection, type RedisState } from '../../src/redis/redis-connection.js';
import { parseRedisUrl } from '../../src/redis/redis-url.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { population } from '../helpers/population.js';

const prefix = testPrefix('redis-down');



const value = (s: string) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
};

describe('when Redis stops answering', () => {
  const proxy = new FreezingProxy();
  let conn: RedisConnection;
  const states: [RedisState, string][] = [];
  const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]) };
  const secret = randomBytes(32);
  const numbers = population(20, 3).map(value);

  beforeAll(async () => {
    await proxy.listen();
    conn = new RedisConnection({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix: prefix,
      // Long enough that a loaded CI machine answers the healthy phase in time, short enough to show that a
      // frozen Redis costs a request at most a few timeouts.
      commandTimeoutMs: 200,
      failureThreshold: 3,
      probeIntervalMs: 100,
      onStateChange: (s, why) => void states.push([s, why]),
    });
    await until(() => conn.state() === 'up');
  });

  afterAll(async () => {
    proxy.thaw();
    await conn.close();
    await proxy.close();
    // Clean up over a direct connection with a generous timeout (a loaded machine can exceed 50 ms).
    await removeKeys(prefix);
  });

  it('cache, limiter and idempotency keep answering within bounds, then Redis comes back', async () => {
    const problems: string[] = [];
    const cache = new ConversionCache({ cacheSecret: secret, redis: conn, observer: { onRedisProblem: (p) => void problems.push(p) } });
    const engine = new CachedEngine(new InlineEngine(keys), cache);
    const limiterFallbacks: string[] = [];
    const limiter = new RateLimiter({ redis: conn, default: { ratePerSec: 1000, burst: 1000 }, onFallback: (_a, r) => void limiterFallbacks.push(r) });
    const idemFallbacks: string[] = [];
    const idem = new IdempotencyStore({ secret, redis: conn, onFallback: (r) => void idemFallbacks.push(r) });
    const expected = new AgencyCodec(keys).encodeMany('pension', numbers);

    // Healthy first (a warm-up call loads the script, then nothing falls back).
    await limiter.take('pension');
    limiterFallbacks.length = 0;
    expect(await engine.issue('pension', numbers)).toEqual(expected);
    expect((await limiter.take('pension')).allowed).toBe(true);
    expect(limiterFallbacks).toEqual([]);

    proxy.freeze();
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      cache.clearLocal();
      const t = Date.now();
      expect(await engine.issue('pension', numbers)).toEqual(expected);
      expect((await limiter.take('pension')).allowed).toBe(true);
      const b = await idem.begin('pension', `req-${i}`);
      expect(b.kind).toBe('new');
      if (b.kind === 'new') await idem.complete(b.token, new Uint8Array([i]));
      expect(Date.now() - t).toBeLessThan(2000);
    }
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(conn.state()).toBe('down');
    expect(states.some(([s, why]) => s === 'down' && why === 'commands timing out')).toBe(true);
    expect(problems.length).toBeGreaterThan(0);
    expect(limiterFallbacks.length).toBe(5);
    expect(idemFallbacks.length).toBeGreaterThan(0);
    // While down, the breaker answers at once: no waiting on the timeout.
    const t1 = Date.now();
    for (let i = 0; i < 100; i++) await limiter.take('pension');
    expect(Date.now() - t1).toBeLessThan(500);
    // Local dedupe still works.
    expect((await idem.begin('pension', 'req-0')).kind).toBe('replay');

    proxy.thaw();
    await until(() => conn.state() === 'up');
    expect(states.at(-1)).toEqual(['up', 'answering again']);
    const before = limiterFallbacks.length;
    expect((await limiter.take('pension')).allowed).toBe(true);
    expect(limiterFallbacks.length).toBe(before);
  });
});

describe('with no Redis at all', () => {
  it('never throws, stays down, and closes cleanly', async () => {
    const port = await closedPort();
    const states: RedisState[] = [];
    const conn = new RedisConnection({ url: `redis://127.0.0.1:${port}`, onStateChange: (s) => void states.push(s) });
    const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]) };
    const engine = new CachedEngine(new InlineEngine(keys), new ConversionCache({ cacheSecret: randomBytes(32), redis: conn }));
    const n = value(population(1)[0]!);
    const t0 = Date.now();
    const [code] = await engine.issue('tax', [n]);
    expect(await engine.decode('tax', [code!])).toEqual([{ ok: true, number: n, version: 1 }]);
    expect(Date.now() - t0).toBeLessThan(1000);
    const r = await conn.run(async (c) => c.get('x'));
    expect(r).toEqual({ ok: false, reason: 'unavailable' });
    // Let a few reconnect attempts fail: their 'error' events must not surface.
    await new Promise((res) => setTimeout(res, 300));
    expect(conn.state()).toBe('down');
    await conn.close();
    await conn.close();
    expect(states.every((s) => s === 'down')).toBe(true);
  });

  it('run() turns a synchronous throw into a result', async () => {
    const conn = new RedisConnection({ url: redisRun().url, keyPrefix: prefix });
    await until(() => conn.state() === 'up');
    const r = await conn.run(() => {
      throw new Error('boom');
    });
    expect(r.ok).toBe(false);
    const reply = await conn.run((c) => c.call('NO-SUCH-COMMAND'));
    expect(reply).toMatchObject({ ok: false, reason: 'error' });
    expect(conn.state()).toBe('up');
    await conn.close();
  });
});

describe('one deadline per operation, and what counts as a failure', () => {
  const reply = (msg: string) => Object.assign(new Error(msg), { name: 'ReplyError' });

  it('an operation that never settles is a timeout at the deadline, whatever is happening inside', async () => {
    const conn = new RedisConnection({ url: redisRun().url, keyPrefix: prefix, commandTimeoutMs: 100 });
    await until(() => conn.state() === 'up');
    expect(conn.deadlineMs).toBe(120);
    const t0 = performance.now();
    const r = await conn.run(() => new Promise<never>(() => undefined));
    expect(r).toEqual({ ok: false, reason: 'timeout' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(conn.deadlineMs - 5);
    await conn.close();
  });

  it('CLUSTERDOWN, TRYAGAIN and MOVED replies open the breaker; other error replies are answers', async () => {
    const states: RedisState[] = [];
    const conn = new RedisConnection({ url: redisRun().url, keyPrefix: prefix, probeIntervalMs: 100, onStateChange: (st) => void states.push(st) });
    await until(() => conn.state() === 'up');
    for (let i = 0; i < 5; i++) expect(await conn.run(() => Promise.reject(reply('WRONGTYPE Operation against a key holding the wrong kind of value')))).toMatchObject({ ok: false, reason: 'error' });
    expect(conn.state()).toBe('up');
    for (const m of ['CLUSTERDOWN The cluster is down', 'TRYAGAIN Multiple keys request during rehashing of slot', 'MOVED 3999 127.0.0.1:6381'])
      expect(await conn.run(() => Promise.reject(reply(m)))).toMatchObject({ ok: false, reason: 'error' });
    expect(conn.state()).toBe('down');
    expect(await conn.run((c) => c.get('x'))).toEqual({ ok: false, reason: 'unavailable' });
    // The probe finds Redis answering and brings it back.
    await until(() => conn.state() === 'up');
    expect(states).toEqual(['up', 'down', 'up']);
    await conn.close();
  });
});

describe('URLs and sealing', () => {
  it('parses cluster URLs and leaves single-node URLs to ioredis', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).toBeNull();
    expect(parseRedisUrl('rediss+cluster://u:p%40ss@h1:7000,h2:7001')).toEqual({
      cluster: true,
      tls: true,
      username: 'u',
      password: 'p@ss',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
    });
    expect(() => parseRedisUrl('redis+cluster://h1:7000/3')).toThrow();
    expect(() => parseRedisUrl('http://x')).toThrow();
  });

  it('names are length-prefixed and values bound to their name', () => {
    const s = new KeyedSealer(randomBytes(32), { name: 'p-name', seal: 'p-seal' }, 'x:');
    expect(s.name('ab', 'c')).not.toBe(s.name('a', 'bc'));
    const k1 = s.name('a');
    const k2 = s.name('b');
    const sealed = s.seal(k1, Buffer.from('secret'));
    expect(s.open(k1, sealed)?.toString()).toBe('secret');
    expect(s.open(k2, sealed)).toBeNull();
    expect(s.open(k1, Buffer.from('junk'))).toBeNull();
    expect(s.open(k1, 'not a buffer')).toBeNull();
  });
});
