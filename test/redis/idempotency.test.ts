import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.js';
import type { RedisConnection } from '../../src/redis/redis-connection.js';
import { closedPort, connector, redisRun, testPrefix, up } from '../helpers/redis.js';

const URL = redisRun().url;
const prefix = testPrefix('idempotency');
const secret = randomBytes(32);
const conns: RedisConnection[] = [];
const connect = connector(URL, prefix, conns);




const rid = () => randomBytes(8).toString('hex');
const outcome = (s: string) => new Uint8Array(Buffer.from(s));

describe('idempotency', () => {
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

  it('replays the outcome to a retry on another replica, sealed in Redis', async () => {
    const s1 = new IdempotencyStore({ secret, redis: a });
    const s2 = new IdempotencyStore({ secret, redis: b });
    const id = rid();
    const first = await s1.begin('pension', id);
    expect(first.kind).toBe('new');
    if (first.kind !== 'new') return;
    const payload = `provider answer for 123456789018 / ${id}`;
    await s1.complete(first.token, outcome(payload));

    const retry = await s2.begin('pension', id);
    expect(retry.kind).toBe('replay');
    if (retry.kind === 'replay') expect(Buffer.from(retry.outcome).toString()).toBe(payload);

    // Another agency with the same request id is a different request.
    expect((await s2.begin('tax', id)).kind).toBe('new');

    const ks = await a.client.keys(`${prefix}*`);
    for (const k of ks) {
      expect(k).not.toContain(id);
      expect(k).not.toContain('pension');
      const v = (await a.client.getBuffer(k))!;
      expect(v.includes(Buffer.from('123456789018'))).toBe(false);
      expect(v.includes(Buffer.from(id))).toBe(false);
      const ttl = await a.client.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(600_000);
    }
  });

  it('answers in-progress while the first attempt runs, and starts afresh after abandon', async () => {
    const s1 = new IdempotencyStore({ secret, redis: a });
    const s2 = new IdempotencyStore({ secret, redis: b });
    const id = rid();
    const first = await s1.begin('tax', id);
    expect(first.kind).toBe('new');
    expect(await s2.begin('tax', id)).toEqual({ kind: 'in-progress' });
    expect(await s1.begin('tax', id)).toEqual({ kind: 'in-progress' });
    if (first.kind === 'new') await s1.abandon(first.token);
    const second = await s2.begin('tax', id);
    expect(second.kind).toBe('new');
    // The abandoned token can no longer complete over the new attempt.
    if (first.kind === 'new') await s1.complete(first.token, outcome('stale'));
    expect(await new IdempotencyStore({ secret, redis: b }).begin('tax', id)).toEqual({ kind: 'in-progress' });
    expect(await s1.begin('tax', id)).toEqual({ kind: 'in-progress' });
  });

  it('a tampered outcome is never replayed; the request runs and it is reported', async () => {
    const s1 = new IdempotencyStore({ secret, redis: a });
    const id = rid();
    const first = await s1.begin('welfare', id);
    if (first.kind !== 'new') throw new Error('expected new');
    await s1.complete(first.token, outcome('the real answer'));
    const v = (await a.client.getBuffer(first.token.key))!;
    v[v.length - 1]! ^= 1;
    await a.client.set(first.token.key, v, 'PX', 60_000);

    const reports: string[] = [];
    const s2 = new IdempotencyStore({ secret, redis: b, onFallback: (r) => void reports.push(r) });
    const retry = await s2.begin('welfare', id);
    expect(retry.kind).toBe('new');
    expect(reports).toEqual(['unsealable']);
  });

  it('expires after the window', async () => {
    const s1 = new IdempotencyStore({ secret, redis: a, windowMs: 1000 });
    const s2 = new IdempotencyStore({ secret, redis: b, windowMs: 1000 });
    const id = rid();
    const first = await s1.begin('pension', id);
    if (first.kind !== 'new') throw new Error('expected new');
    await s1.complete(first.token, outcome('x'));
    expect((await s2.begin('pension', id)).kind).toBe('replay');
    await new Promise((r) => setTimeout(r, 1200));
    expect((await s2.begin('pension', id)).kind).toBe('new');
  });

  it('an unfinished request blocks its retries until its deadline, at most inProgressTtlMs (a crash leaves no minute-long block)', async () => {
    const s1 = new IdempotencyStore({ secret, redis: a, inProgressTtlMs: 5000 });
    const s2 = new IdempotencyStore({ secret, redis: b, inProgressTtlMs: 5000 });
    const id = rid();
    const first = await s1.begin('pension', id, Date.now() + 400);
    if (first.kind !== 'new') throw new Error('expected new');
    // s1 "dies" here: it never completes nor abandons.
    const ttl = await a.client.pttl(first.token.key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(400);
    expect(await s2.begin('pension', id)).toEqual({ kind: 'in-progress' });
    await new Promise((r) => setTimeout(r, ttl + 100));
    expect((await s2.begin('pension', id)).kind).toBe('new');

    // No deadline (or a later one): the cap.
    const capped = await s1.begin('pension', rid(), Date.now() + 3_600_000);
    if (capped.kind !== 'new') throw new Error('expected new');
    expect(await a.client.pttl(capped.token.key)).toBeLessThanOrEqual(5000);
  });

  it('with Redis down: never fails, says new, reports it, and still dedupes on this replica', async () => {
    const dead = connect(`redis://127.0.0.1:${await closedPort()}`);
    const reports: string[] = [];
    const s = new IdempotencyStore({ secret, redis: dead, onFallback: (r) => void reports.push(r) });
    const id = rid();
    const t0 = Date.now();
    const first = await s.begin('pension', id);
    expect(first.kind).toBe('new');
    expect(await s.begin('pension', id)).toEqual({ kind: 'in-progress' });
    if (first.kind === 'new') await s.complete(first.token, outcome('answer'));
    const retry = await s.begin('pension', id);
    expect(retry.kind).toBe('replay');
    if (retry.kind === 'replay') expect(Buffer.from(retry.outcome).toString()).toBe('answer');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(reports.length).toBeGreaterThan(0);
    expect(new Set(reports)).toEqual(new Set(['unavailable']));
  });

  it('keeps the local map bounded', async () => {
    const s = new IdempotencyStore({ secret, localMaxEntries: 10 });
    const ids = Array.from({ length: 30 }, rid);
    for (const id of ids) {
      const r = await s.begin('x', id);
      if (r.kind === 'new') await s.complete(r.token, outcome(id));
    }
    expect((await s.begin('x', ids[29]!)).kind).toBe('replay');
    expect((await s.begin('x', ids[0]!)).kind).toBe('new');
  });
});
