import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec, CODE_BYTES, type MasterKeys } from '../../src/core/agency-code.js';
import { base32Decode } from '../../src/core/base32.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { ConversionCache, type CacheObserver } from '../../src/cache/conversion-cache.js';
import { CachedEngine } from '../../src/engine/cached-engine.js';
import { InlineEngine, type MappingEngine } from '../../src/engine/mapping-engine.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { population } from '../helpers/population.js';
import { redisRun, testPrefix, up } from '../helpers/redis.js';

const URL = redisRun().url;
const prefix = testPrefix('conversion-cache');

const value = (s: string) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
};

/** Counts what reaches the inner engine. */
class Counting implements MappingEngine {
  readonly kind = 'inline' as const;
  issued = 0;
  decoded = 0;
  constructor(readonly inner: MappingEngine) {}
  async issue(a: string, n: readonly number[]) {
    this.issued += n.length;
    return this.inner.issue(a, n);
  }
  async decode(a: string, c: readonly string[]) {
    this.decoded += c.length;
    return this.inner.decode(a, c);
  }
  async close() {}
}

function observer() {
  const counts: Record<string, number> = {};
  const problems: string[] = [];
  const o: CacheObserver = {
    onLookup: (tier, outcome, n) => void (counts[`${tier}:${outcome}`] = (counts[`${tier}:${outcome}`] ?? 0) + n),
    onRedisProblem: (p) => void problems.push(p),
  };
  return { o, counts, problems };
}


/** Waits until every command issued so far on this connection has been answered (same socket, in order). */
async function flush(conn: RedisConnection): Promise<void> {
  await conn.client.ping();
}

const keys: MasterKeys = { current: 1, masters: new Map([[1, randomBytes(32)]]) };
const cacheSecret = randomBytes(32);
const numbers = population(60, 7).map(value);
const conns: RedisConnection[] = [];

function replica(extra: Partial<ConstructorParameters<typeof ConversionCache>[0]> = {}) {
  const conn = new RedisConnection({ url: URL, keyPrefix: prefix, commandTimeoutMs: 500 });
  conns.push(conn);
  const obs = observer();
  const inner = new Counting(new InlineEngine(keys));
  const cache = new ConversionCache({ cacheSecret, redis: conn, generation: keys.current, observer: obs.o, ...extra });
  return { conn, inner, cache, engine: new CachedEngine(inner, cache), ...obs };
}

async function allEntries(conn: RedisConnection): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  let cursor = '0';
  do {
    // Only this file's keys: other runs share the Redis.
    const [next, batch] = await conn.client.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next.toString();
    for (const k of batch) {
      const v = await conn.client.getBuffer(k);
      out.push([k.toString('latin1'), v ?? Buffer.alloc(0)]);
    }
  } while (cursor !== '0');
  return out;
}

async function cleanup(conn: RedisConnection): Promise<void> {
  const ks = (await allEntries(conn)).map(([k]) => k).filter((k) => k.startsWith(prefix));
  if (ks.length) await conn.client.del(...ks);
}

describe('conversion cache (two replicas sharing one Redis)', () => {
  const codec = new AgencyCodec(keys);
  let A: ReturnType<typeof replica>;
  let B: ReturnType<typeof replica>;

  beforeAll(async () => {
    A = replica();
    B = replica();
    await Promise.all([up(A.conn), up(B.conn)]);
    await cleanup(A.conn);
  });

  afterAll(async () => {
    await cleanup(A.conn);
    await Promise.all(conns.map((c) => c.close()));
  });

  it('keeps the inner engine kind', () => {
    expect(A.engine.kind).toBe('inline');
  });

  it('a code computed on one replica is a Redis hit on the other', async () => {
    const codes = await A.engine.issue('pension', numbers);
    expect(codes).toEqual(codec.encodeMany('pension', numbers));
    expect(A.inner.issued).toBe(numbers.length);
    expect(A.counts['redis:miss']).toBe(numbers.length);
    await flush(A.conn);

    const again = await B.engine.issue('pension', numbers);
    expect(again).toEqual(codes);
    expect(B.inner.issued).toBe(0);
    expect(B.counts['redis:hit']).toBe(numbers.length);
    expect(B.counts['local:miss']).toBe(numbers.length);

    // Now in B's own LRU: no Redis round trip at all.
    await B.engine.issue('pension', numbers.slice(0, 10));
    expect(B.counts['local:hit']).toBe(10);
    expect(B.counts['redis:hit']).toBe(numbers.length);
  });

  it('decodes are shared too, and a mixed batch only computes the misses', async () => {
    const codes = codec.encodeMany('tax', numbers);
    const d1 = await B.engine.decode('tax', codes.slice(0, 30));
    expect(d1).toEqual(numbers.slice(0, 30).map((number) => ({ ok: true, number, version: 1 })));
    expect(B.inner.decoded).toBe(30);
    await flush(B.conn);

    const d2 = await A.engine.decode('tax', codes);
    expect(d2).toEqual(numbers.map((number) => ({ ok: true, number, version: 1 })));
    expect(A.inner.decoded).toBe(30); // only the 30 never seen
  });

  it('never caches a forged or foreign code', async () => {
    const foreign = codec.encode('welfare', numbers[0]!);
    const garbage = 'not a code';
    for (let round = 0; round < 2; round++) {
      const before = A.inner.decoded;
      const d = await A.engine.decode('pension', [foreign, garbage]);
      expect(d).toEqual([
        { ok: false, problem: 'not-authentic' },
        { ok: false, problem: 'format' },
      ]);
      expect(A.inner.decoded - before).toBe(2);
    }
  });

  it('a tampered or moved value is a miss and the answer stays correct', async () => {
    const agency = 'health';
    const some = numbers.slice(0, 6);
    const first = replica();
    await up(first.conn);
    const codes = await first.engine.issue(agency, some);
    await flush(first.conn);

    // Tamper with four of the six entries: swap two values, flip a bit of one, replace one with garbage.
    const victims = await keysFor(first, agency, some);
    expect(victims).toHaveLength(6);
    const [k0, k1, k2, k3] = victims as [string, string, string, string];
    const v0 = (await first.conn.client.getBuffer(k0))!;
    const v1 = (await first.conn.client.getBuffer(k1))!;
    await first.conn.client.set(k0, v1, 'PX', 60_000); // moved value
    await first.conn.client.set(k1, v0, 'PX', 60_000);
    const v2 = (await first.conn.client.getBuffer(k2))!;
    v2[v2.length - 20]! ^= 0x01;
    await first.conn.client.set(k2, v2, 'PX', 60_000); // flipped bit
    await first.conn.client.set(k3, 'garbage', 'PX', 60_000); // garbage

    const fresh = replica();
    await up(fresh.conn);
    const again = await fresh.engine.issue(agency, some);
    expect(again).toEqual(codes);
    expect(fresh.inner.issued).toBe(4);
    expect(fresh.counts['redis:hit']).toBe(2);
    expect(fresh.problems).toContain('unsealable');
  });

  it('a full dump holds no number, no code and no agency id in clear', async () => {
    const agencies = ['pension', 'tax', 'welfare', 'health'];
    for (const a of agencies) {
      const codes = await A.engine.issue(a, numbers);
      await B.engine.decode(a, codes);
    }
    await flush(A.conn);
    await flush(B.conn);
    const dump = await allEntries(A.conn);
    const ours = dump.filter(([k]) => k.startsWith(prefix));
    expect(ours.length).toBeGreaterThanOrEqual(agencies.length * numbers.length * 2);

    const needles: Buffer[] = [];
    for (const n of numbers) needles.push(Buffer.from(String(n).padStart(12, '0')));
    for (const a of agencies)
      for (const c of codec.encodeMany(a, numbers)) {
        needles.push(Buffer.from(c), Buffer.from(c.toLowerCase()), Buffer.from(base32Decode(c, CODE_BYTES)!));
      }
    // Agency ids of six bytes or more are searched for like the needles. A three-letter id such as `tax` turns
    // up by chance in 10,000 characters of base64 names (about 1 run in 20), so the shape checks below
    // cover every id instead: a key is the prefix and a fixed-length keyed hash, a value is a seal around a
    // code-sized or number-sized plaintext, and neither has room for anything else.
    for (const a of agencies) if (a.length >= 6) needles.push(Buffer.from(a));
    for (const [k, v] of ours) {
      expect(k).toMatch(new RegExp(`^${prefix}c:[A-Za-z0-9_-]{22}$`));
      expect(v[0]).toBe(0x01);
      expect([1 + 12 + 28 + 16, 1 + 12 + 6 + 16]).toContain(v.length);
    }
    // Every key and value, each on its own line, searched at once.
    const blob = Buffer.concat(dump.flatMap(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from('\n'), v, Buffer.from('\n')]));
    const text = blob.toString('latin1');
    expect(/[0-9]{12}/.test(text)).toBe(false);
    expect(/[0-9A-Za-z]{28}/.test(text)).toBe(false);
    for (const n of needles) expect(blob.includes(n)).toBe(false);
    const ttls = await Promise.all(ours.map(([k]) => A.conn.client.pttl(k)));
    for (const t of ttls) expect(t).toBeGreaterThan(0);
    // TTLs carry jitter, so entries written together do not expire together.
    expect(new Set(ttls.map((t) => Math.floor(t / 1000))).size).toBeGreaterThan(10);
  });

  it('skips Redis for batches above redisMaxBatch, and works without Redis at all', async () => {
    const big = replica({ redisMaxBatch: 8 });
    await up(big.conn);
    const codes = await big.engine.issue('pension', numbers);
    expect(codes).toEqual(codec.encodeMany('pension', numbers));
    expect(big.counts['redis:hit']).toBeUndefined();

    const obs = observer();
    const local = new CachedEngine(new InlineEngine(keys), new ConversionCache({ cacheSecret, observer: obs.o }));
    expect(await local.issue('pension', numbers)).toEqual(codes);
    expect(await local.issue('pension', numbers)).toEqual(codes);
    expect(obs.counts['local:hit']).toBe(numbers.length);
    expect(obs.counts['redis:miss']).toBeUndefined();
  });

  it('keys change with the generation (key rotation)', async () => {
    const g2 = replica({ generation: 2 });
    await up(g2.conn);
    await g2.engine.issue('pension', numbers.slice(0, 5));
    expect(g2.counts['redis:hit']).toBeUndefined();
    expect(g2.inner.issued).toBe(5);
  });
});

/** The Redis keys a cache uses for these numbers: found by probing which keys a fresh instance reads. */
async function keysFor(r: { conn: RedisConnection }, agency: string, some: readonly number[]): Promise<string[]> {
  const seen: string[] = [];
  const client = r.conn.client;
  const orig = client.getBuffer.bind(client);
  (client as unknown as { getBuffer: (k: string) => Promise<Buffer | null> }).getBuffer = (k: string) => {
    seen.push(k);
    return orig(k);
  };
  try {
    const probe = new ConversionCache({ cacheSecret, redis: r.conn, generation: keys.current });
    await probe.getCodes(agency, some);
  } finally {
    delete (client as unknown as { getBuffer?: unknown }).getBuffer;
  }
  return seen;
}
