/**
 * The Redis adapter against a real Redis Cluster (3 masters, 3 replicas, test/helpers/redis-cluster.ts):
 * the master of a hot key killed under traffic (failover to its replica), then a whole slot range down (a
 * master and its replica killed), then a cluster that refuses every key (CLUSTERDOWN). Throughout, every
 * operation of the rate limiter, the idempotency store and the conversion cache settles within the
 * connection's deadline, never throws, and only the keys of the shard that is away run on local state.
 *
 * "Within the deadline" allows for the event loop's own lateness, measured alongside: a timer cannot fire
 * earlier than the loop lets it, and on a loaded CI machine the loop can be late by more than the deadline.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConversionCache } from '../../src/cache/conversion-cache.js';
import { IdempotencyStore } from '../../src/idempotency/idempotency-store.js';
import { RateLimiter } from '../../src/limits/rate-limiter.js';
import type { Logger } from '../../src/log/logger.js';
import { keySlot } from '../../src/redis/key-slot.js';
import { RedisConnection, type RedisState } from '../../src/redis/redis-connection.js';
import { cli, RedisCluster, type ClusterNode } from '../helpers/redis-cluster.js';
import { until } from '../helpers/wait.js';

const prefix = `t-${randomBytes(4).toString('hex')}:`;
const secret = randomBytes(32);

interface Line {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}
function captureLogger(lines: Line[]): Logger {
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  const l: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

let cluster: RedisCluster;
let conn: RedisConnection;
const states: [RedisState, string][] = [];
const lines: Line[] = [];

/** An agency id whose rate-limit key lives on `node`'s slots (or, with `not`, on another live master's). */
async function agencyOn(node: ClusterNode, not = false): Promise<string> {
  const view = await cluster.view();
  const ownerPort = (slot: number) => view.find((v) => v.role === 'master' && !v.failed && v.slots.some(([a, b]) => slot >= a && slot <= b))?.port;
  for (let i = 0; i < 10_000; i++) {
    const id = `agency-${i}`;
    const port = ownerPort(keySlot(`${prefix}rl:${id}`));
    if (port !== undefined && (port === node.port) !== not) return id;
  }
  throw new Error('no agency id found');
}

/** Runs the three features for one agency until `stop`, timing every operation. */
async function traffic(agency: string, stop: () => boolean, parts: { limiter: RateLimiter; idem: IdempotencyStore; cache: ConversionCache }, waits: number[]): Promise<void> {
  const timed = async <T>(p: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await p();
    } finally {
      waits.push(performance.now() - t0);
    }
  };
  let i = 0;
  while (!stop()) {
    i++;
    await timed(() => parts.limiter.take(agency));
    const b = await timed(() => parts.idem.begin(agency, `req-${i}`, Date.now() + 5000));
    if (b.kind === 'new') await timed(() => parts.idem.complete(b.token, new Uint8Array([1, 2, 3])));
    const numbers = [i, i + 1_000_000, i + 2_000_000];
    const got = await timed(() => parts.cache.getCodes(agency, numbers));
    parts.cache.putCodes(agency, numbers, Array.from(got, (c, j) => c ?? 'A'.repeat(27) + String(j)));
    await new Promise((r) => setTimeout(r, 2));
  }
}

beforeAll(async () => {
  cluster = await RedisCluster.start();
  conn = new RedisConnection({
    url: cluster.url,
    keyPrefix: prefix,
    // Long enough that a loaded CI machine answers in time when the cluster is healthy.
    commandTimeoutMs: 250,
    probeIntervalMs: 200,
    logger: captureLogger(lines),
    onStateChange: (s, why) => void states.push([s, why]),
  });
  await until(() => conn.state() === 'up', 10_000);
}, 60_000);

afterAll(async () => {
  await conn?.close();
  await cluster?.stop();
});

describe('a Redis Cluster', () => {
  it('puts a key on the slot the cluster does (hash tags included)', async () => {
    for (const k of ['a', `${prefix}rl:pension`, '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', '日本語', '']) {
      expect(keySlot(k), k).toBe(await cluster.slotOf(k));
    }
  });

  it('fails over under traffic: no operation waits past the deadline, only the hot shard runs locally, and Redis comes back', async () => {
    const fallbacks: [string, string][] = [];
    const parts = {
      limiter: new RateLimiter({ redis: conn, default: { ratePerSec: 1e6, burst: 1e6 }, onFallback: (a, why) => void fallbacks.push([a, why]) }),
      idem: new IdempotencyStore({ secret, redis: conn }),
      cache: new ConversionCache({ cacheSecret: secret, redis: conn, localMax: 0 }),
    };
    const hot = 'pension';
    const master = await cluster.masterOfSlot(keySlot(`${prefix}rl:${hot}`));
    const cool = await agencyOn(master, true);
    const masterKey = `127.0.0.1:${master.port}`;
    const mark = lines.length;

    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const waits: number[] = [];
    let stopping = false;
    const loops = [traffic(hot, () => stopping, parts, waits), traffic(hot, () => stopping, parts, waits), traffic(cool, () => stopping, parts, waits)];
    try {
      await new Promise((r) => setTimeout(r, 500));
      await cluster.kill(master);
      const heir = await cluster.waitFailover(master);
      expect(heir.port).not.toBe(master.port);
      await until(() => conn.state() === 'up', 15_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      stopping = true;
      await Promise.all(loops);
      lag.disable();
    }

    const bound = conn.deadlineMs + lag.max / 1e6 + 50;
    expect(Math.max(...waits), `bound ${bound.toFixed(0)} ms`).toBeLessThanOrEqual(bound);
    expect(waits.length).toBeGreaterThan(50);
    // The hot agency ran on local state while its shard was away; the other shards were never switched off.
    expect(fallbacks.filter(([a]) => a === hot).length).toBeGreaterThan(0);
    expect(fallbacks.filter(([a, why]) => a === cool && why === 'unavailable')).toEqual([]);
    expect(fallbacks.filter(([a]) => a === cool).length).toBeLessThanOrEqual(3);
    const seen = lines.slice(mark);
    const downs = seen.filter((l) => l.msg.startsWith('redis down') || l.msg === 'redis node down');
    expect(downs.length).toBeGreaterThan(0);
    for (const d of downs) expect(d.fields.node).toBe(masterKey);
    // Logged once per change, not once per failing call: per node, downs and ups alternate.
    const changes = seen.filter((l) => /^redis (up|down|node)/.test(l.msg));
    const last = new Map<unknown, string>();
    for (const l of changes) {
      const to = /\bup\b/.test(l.msg) ? 'up' : 'down';
      expect(last.get(l.fields.node), `${String(l.fields.node)} logged ${to} twice in a row`).not.toBe(to);
      last.set(l.fields.node, to);
    }
    expect(changes.length).toBeLessThan(fallbacks.length);
    expect(states.at(-1)?.[0]).toBe('up');

    // Back on Redis: the hot agency's bucket is shared state again.
    const before = fallbacks.length;
    expect((await parts.limiter.take(hot)).allowed).toBe(true);
    expect(fallbacks.length).toBe(before);
  }, 90_000);

  it('with a slot range down, the other shards keep serving and the lost one runs on local state within the deadline', async () => {
    // A shard that still has its replica (not the one that failed over).
    let victim: ClusterNode | undefined;
    let replicas: ClusterNode[] = [];
    for (const m of await cluster.mastersExcept()) {
      replicas = (await cluster.replicasOf(m)).filter((r) => cluster.alive().includes(r));
      if (replicas.length) {
        victim = m;
        break;
      }
    }
    if (!victim) throw new Error('no master with a live replica');
    const lost = await agencyOn(victim);
    const kept = await agencyOn(victim, true);
    const fallbacks: [string, string][] = [];
    const idemFallbacks: string[] = [];
    const problems: string[] = [];
    const parts = {
      limiter: new RateLimiter({ redis: conn, default: { ratePerSec: 1e6, burst: 1e6 }, onFallback: (a, why) => void fallbacks.push([a, why]) }),
      idem: new IdempotencyStore({ secret, redis: conn, onFallback: (why) => void idemFallbacks.push(why) }),
      cache: new ConversionCache({ cacheSecret: secret, redis: conn, localMax: 0, observer: { onRedisProblem: (p) => void problems.push(p) } }),
    };
    // Entries spread over every shard, written while all are up.
    const numbers = Array.from({ length: 48 }, (_, i) => 9_000_000 + i);
    const codes = numbers.map((n) => `C${String(n).padStart(27, '0')}`);
    parts.cache.putCodes('spread', numbers, codes);
    await new Promise((r) => setTimeout(r, 300));

    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const waits: number[] = [];
    let stopping = false;
    await Promise.all([victim, ...replicas].map((n) => cluster.kill(n)));
    const loops = [traffic(lost, () => stopping, parts, waits), traffic(kept, () => stopping, parts, waits)];
    try {
      await cluster.waitFailed([victim, ...replicas]);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      stopping = true;
      await Promise.all(loops);
      lag.disable();
    }
    const bound = conn.deadlineMs + lag.max / 1e6 + 50;
    expect(Math.max(...waits), `bound ${bound.toFixed(0)} ms`).toBeLessThanOrEqual(bound);
    expect(fallbacks.filter(([a]) => a === lost).length).toBeGreaterThan(0);
    expect(fallbacks.filter(([a, why]) => a === kept && why === 'unavailable')).toEqual([]);
    expect(conn.state()).toBe('down'); // a shard is away
    // Local idempotency still dedupes on the lost shard.
    const first = await parts.idem.begin(lost, 'dedupe-me', Date.now() + 5000);
    expect(first.kind).toBe('new');
    expect(await parts.idem.begin(lost, 'dedupe-me', Date.now() + 5000)).toEqual({ kind: 'in-progress' });
    // A batch spread over the shards: found where the shard is up, a miss where it is not.
    const t0 = performance.now();
    const got = await parts.cache.getCodes('spread', numbers);
    expect(performance.now() - t0).toBeLessThanOrEqual(conn.deadlineMs + lag.max / 1e6 + 50);
    const hits = got.filter((c, i) => c === codes[i]).length;
    expect(hits).toBeGreaterThan(0);
    expect(hits).toBeLessThan(numbers.length);
    expect(got.every((c, i) => c === undefined || c === codes[i])).toBe(true);
  }, 90_000);

  it('a cluster that refuses every key (CLUSTERDOWN) is a failure, not an answer: local state within the deadline', async () => {
    // With full coverage required, a slot range nobody serves makes every node answer CLUSTERDOWN. The live
    // nodes forget the lost shard's slots (DELSLOTSRANGE), which also makes them re-evaluate their state.
    const lostRanges = (await cluster.view()).filter((v) => v.role === 'master' && v.failed).flatMap((v) => v.slots);
    expect(lostRanges.length).toBeGreaterThan(0);
    for (const n of cluster.alive()) {
      await cli(n.port, 'config', 'set', 'cluster-require-full-coverage', 'yes');
      await cli(n.port, 'cluster', 'delslotsrange', ...lostRanges.flatMap(([a, b]) => [String(a), String(b)]));
    }
    const reasons: string[] = [];
    const limiter = new RateLimiter({ redis: conn, default: { ratePerSec: 1e6, burst: 1e6 }, onFallback: (_a, why) => void reasons.push(why) });
    const agencies = Array.from({ length: 20 }, (_, i) => `down-${i}`);
    // Until the nodes have noticed (their cron runs every 100 ms), some keys may still be served.
    await until(async () => {
      reasons.length = 0;
      for (const a of agencies) await limiter.take(a);
      return reasons.length === agencies.length;
    }, 10_000);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const waits: number[] = [];
    for (let round = 0; round < 3; round++)
      for (const a of agencies) {
        const t0 = performance.now();
        expect((await limiter.take(a)).allowed).toBe(true);
        waits.push(performance.now() - t0);
      }
    lag.disable();
    expect(Math.max(...waits)).toBeLessThanOrEqual(conn.deadlineMs + lag.max / 1e6 + 50);
    // Every breaker is open now, so these answered at once.
    expect(reasons.at(-1)).toBe('unavailable');
    expect(lines.some((l) => /^redis (down|node down)/.test(l.msg) && String(l.fields.reason).includes('CLUSTERDOWN'))).toBe(true);
  }, 60_000);
});
