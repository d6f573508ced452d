/**
 * Conversion cache: an in-process LRU in front of Redis, for number→code (issue) and code→number (decode) of
 * one agency at a time.
 *
 * What Redis holds, per entry (a dump reveals no number, no code, and nothing linking two agencies):
 *   key   = prefix 'c:' ‖ HMAC(deriveKey(cacheSecret, 'cache-key'), direction, generation, agency, input)
 *   value = AES-256-GCM sealed under a per-entry key from deriveKey(cacheSecret, 'cache-seal'), AD = key
 *           number→code: the 28-character code;  code→number: key version (1 byte) ‖ number (5 bytes)
 * Only per-agency entries exist: never a codeA→codeB mapping. Each TTL carries random jitter so entries written
 * by the same request do not share an expiry time that would pair them up in a dump.
 *
 * Redis is never needed for a correct answer: down, slow (past the connection's deadline), or holding garbage,
 * a tampered value or a value moved from another key, it is a miss and the caller computes. Only authentic
 * decodes are cached; a forged code is recomputed (and rejected) every time, so forgeries cannot fill the
 * cache. Batches larger than `redisMaxBatch` skip Redis altogether: computing a code costs about a
 * microsecond, a Redis round trip tens of them (bench/micro/redis-vs-compute.bench.ts).
 *
 * On a Redis Cluster a batch is split by the node that serves each key, one operation per node: the keys of a
 * shard that is away are misses, the others are still found. Entries carry no hash tag, on purpose: one
 * agency's entries spread over every shard, and nothing in a key name groups them.
 *
 * `generation` belongs in the key: pass the keyring's current master version so that after a rotation no
 * number→code entry of the previous version is served.
 */
import { LRUCache } from 'lru-cache';
import { CODE_BYTES } from '../core/agency-code.js';
import type { Decoded } from '../core/agency-code.js';
import { base32Decode } from '../core/base32.js';
import { KeyedSealer } from '../core/keyed-sealer.js';
import type { RedisConnection, RedisFailure } from '../redis/redis-connection.js';

export type CacheTier = 'local' | 'redis';
export type CacheOutcome = 'hit' | 'miss';
export type CacheProblem = 'unavailable' | 'timeout' | 'error' | 'unsealable';

export interface CacheObserver {
  /** Once per tier per lookup batch, for each outcome with a non-zero count. */
  onLookup?(tier: CacheTier, outcome: CacheOutcome, count: number): void;
  /** Redis could not be used for a batch (or a value did not open); those lookups counted as misses. */
  onRedisProblem?(problem: CacheProblem): void;
}

export interface ConversionCacheOptions {
  /** The keyring's cacheSecret (32 bytes). */
  cacheSecret: Uint8Array;
  /** The shared tier; absent: local only. */
  redis?: RedisConnection;
  /** Part of every key; pass the keyring's current master version (default 0). */
  generation?: number | string;
  /** Redis TTL in ms (default 24 h). */
  ttlMs?: number;
  /** TTL jitter as a fraction: each entry lives ttl × (1 − jitter … 1) (default 0.2). */
  ttlJitter?: number;
  /** In-process tier: entries (default 100 000; 0 disables) and TTL in ms (default 10 min). */
  localMax?: number;
  localTtlMs?: number;
  /** Batches with more keys than this go straight to compute, skipping Redis (default 64). */
  redisMaxBatch?: number;
  observer?: CacheObserver;
}

type Direction = 'number→code' | 'code→number';
type NumberEntry = { number: number; version: number };

export class ConversionCache {
  readonly #redis: RedisConnection | undefined;
  readonly #sealer: KeyedSealer;
  readonly #generation: string;
  readonly #ttl: number;
  readonly #jitter: number;
  readonly #maxBatch: number;
  readonly #observer: CacheObserver;
  readonly #codes: LRUCache<string, string> | undefined;
  readonly #numbers: LRUCache<string, NumberEntry> | undefined;

  constructor(opts: ConversionCacheOptions) {
    this.#redis = opts.redis;
    this.#sealer = new KeyedSealer(opts.cacheSecret, { name: 'cache-key', seal: 'cache-seal' }, `${opts.redis?.keyPrefix ?? ''}c:`);
    this.#generation = String(opts.generation ?? 0);
    this.#ttl = Math.max(1000, Math.floor(opts.ttlMs ?? 86_400_000));
    this.#jitter = Math.min(0.9, Math.max(0, opts.ttlJitter ?? 0.2));
    this.#maxBatch = Math.max(0, opts.redisMaxBatch ?? 64);
    this.#observer = opts.observer ?? {};
    const max = opts.localMax ?? 100_000;
    if (max > 0) {
      const ttl = Math.max(1, opts.localTtlMs ?? 600_000);
      this.#codes = new LRUCache<string, string>({ max, ttl, ttlAutopurge: false });
      this.#numbers = new LRUCache<string, NumberEntry>({ max, ttl, ttlAutopurge: false });
    }
  }

  /** Codes of `agency` for these numbers: a string where cached, undefined where the caller must compute. */
  async getCodes(agency: string, numbers: readonly number[]): Promise<(string | undefined)[]> {
    const out = new Array<string | undefined>(numbers.length);
    const missing: number[] = [];
    for (let i = 0; i < numbers.length; i++) {
      const v = this.#codes?.get(localKey(agency, numbers[i]!));
      if (v === undefined) missing.push(i);
      else out[i] = v;
    }
    this.#count('local', numbers.length - missing.length, missing.length);
    if (missing.length === 0) return out;
    const found = await this.#redisGet('number→code', agency, missing.map((i) => numbers[i]!), decodeCode);
    if (found) {
      for (let j = 0; j < missing.length; j++) {
        const v = found[j];
        if (v === undefined) continue;
        const i = missing[j]!;
        out[i] = v;
        this.#codes?.set(localKey(agency, numbers[i]!), v);
      }
    }
    return out;
  }

  /** Decoded numbers of `agency`'s codes where cached (authentic ones only), undefined otherwise. */
  async getNumbers(agency: string, codes: readonly string[]): Promise<(Decoded | undefined)[]> {
    const out = new Array<Decoded | undefined>(codes.length);
    const missing: number[] = [];
    for (let i = 0; i < codes.length; i++) {
      const v = typeof codes[i] === 'string' ? this.#numbers?.get(localKey(agency, codes[i]!)) : undefined;
      if (v === undefined) missing.push(i);
      else out[i] = { ok: true, number: v.number, version: v.version };
    }
    this.#count('local', codes.length - missing.length, missing.length);
    if (missing.length === 0) return out;
    // Only strings shaped like a code are worth a Redis round trip.
    const ask = missing.filter((i) => typeof codes[i] === 'string' && base32Decode(codes[i]!, CODE_BYTES) !== null);
    const found = ask.length ? await this.#redisGet('code→number', agency, ask.map((i) => codes[i]!), decodeNumber) : undefined;
    if (ask.length < missing.length && this.#redis) this.#count('redis', 0, missing.length - ask.length);
    if (found) {
      for (let j = 0; j < ask.length; j++) {
        const v = found[j];
        if (v === undefined) continue;
        const i = ask[j]!;
        out[i] = { ok: true, number: v.number, version: v.version };
        this.#numbers?.set(localKey(agency, codes[i]!), v);
      }
    }
    return out;
  }

  /** Remembers computed codes (numbers[i] → codes[i]). Fire and forget: never throws, never waits on Redis. */
  putCodes(agency: string, numbers: readonly number[], codes: readonly string[]): void {
    const n = Math.min(numbers.length, codes.length);
    if (this.#codes) for (let i = 0; i < n; i++) this.#codes.set(localKey(agency, numbers[i]!), codes[i]!);
    if (!this.#redisUsable(n)) return;
    const items: [string | number, Buffer][] = [];
    for (let i = 0; i < n; i++) items.push([numbers[i]!, Buffer.from(codes[i]!, 'latin1')]);
    this.#redisPut('number→code', agency, items);
  }

  /** Remembers authentic decodes (codes[i] → results[i]); results that are not ok are skipped. */
  putNumbers(agency: string, codes: readonly string[], results: readonly Decoded[]): void {
    const items: [string | number, Buffer][] = [];
    const n = Math.min(codes.length, results.length);
    for (let i = 0; i < n; i++) {
      const d = results[i]!;
      if (!d.ok || typeof codes[i] !== 'string') continue;
      this.#numbers?.set(localKey(agency, codes[i]!), { number: d.number, version: d.version });
      const b = Buffer.allocUnsafe(6);
      b[0] = d.version;
      b.writeUIntBE(d.number, 1, 5);
      items.push([codes[i]!, b]);
    }
    if (items.length && this.#redisUsable(items.length)) this.#redisPut('code→number', agency, items);
  }

  /** Empties the in-process tier (Redis entries expire on their own). */
  clearLocal(): void {
    this.#codes?.clear();
    this.#numbers?.clear();
  }

  #redisUsable(n: number): boolean {
    return this.#redis !== undefined && this.#redis.usable() && n > 0 && n <= this.#maxBatch;
  }

  async #redisGet<T>(dir: Direction, agency: string, inputs: readonly (string | number)[], decode: (b: Buffer) => T | undefined): Promise<(T | undefined)[] | undefined> {
    const redis = this.#redis;
    if (!redis) return undefined;
    if (inputs.length > this.#maxBatch) {
      this.#count('redis', 0, inputs.length);
      return undefined;
    }
    const names = inputs.map((x) => this.#sealer.name(dir, this.#generation, agency, x));
    const groups = redis.groupByNode(names);
    const replies = await Promise.all(groups.map((g) => redis.run((c) => Promise.all(g.map((i) => c.getBuffer(names[i]!))), names[g[0]!])));
    const out = new Array<T | undefined>(inputs.length);
    let hits = 0;
    let unsealable = 0;
    let answered = false;
    const problems = new Set<RedisFailure>();
    replies.forEach((r, j) => {
      if (!r.ok) return void problems.add(r.reason);
      answered = true;
      const group = groups[j]!;
      for (let k = 0; k < group.length; k++) {
        const raw = r.value[k];
        if (raw === null || raw === undefined) continue;
        const i = group[k]!;
        const plain = this.#sealer.open(names[i]!, raw);
        const v = plain ? decode(plain) : undefined;
        if (v === undefined) {
          unsealable++;
          continue;
        }
        out[i] = v;
        hits++;
      }
    });
    this.#count('redis', hits, inputs.length - hits);
    for (const p of problems) this.#problem(p);
    if (unsealable) this.#problem('unsealable');
    return answered ? out : undefined;
  }

  #redisPut(dir: Direction, agency: string, items: readonly [string | number, Buffer][]): void {
    const redis = this.#redis!;
    const names = items.map(([input]) => this.#sealer.name(dir, this.#generation, agency, input));
    for (const g of redis.groupByNode(names)) {
      const key = names[g[0]!]!;
      if (!redis.usable(key)) continue; // that shard is away: nothing to seal for it
      const entries = g.map((i) => [names[i]!, this.#sealer.seal(names[i]!, items[i]![1]), this.#ttlFor()] as const);
      void redis.run((c) => Promise.all(entries.map(([k, v, ttl]) => c.set(k, v, 'PX', ttl))), key).then((r) => {
        if (!r.ok) this.#problem(r.reason);
      });
    }
    for (const [, plain] of items) plain.fill(0);
  }

  #ttlFor(): number {
    return Math.max(1000, Math.floor(this.#ttl * (1 - this.#jitter * Math.random())));
  }

  #count(tier: CacheTier, hits: number, misses: number): void {
    const f = this.#observer.onLookup;
    if (!f) return;
    if (tier === 'local' && !this.#codes) return;
    try {
      if (hits) f.call(this.#observer, tier, 'hit', hits);
      if (misses) f.call(this.#observer, tier, 'miss', misses);
    } catch {
      // a metrics callback never fails a lookup
    }
  }

  #problem(p: CacheProblem): void {
    try {
      this.#observer.onRedisProblem?.(p);
    } catch {
      // as above
    }
  }
}

function localKey(agency: string, x: string | number): string {
  return `${agency}\0${x}`;
}

function decodeCode(b: Buffer): string | undefined {
  if (b.length !== 28) return undefined;
  const s = b.toString('latin1');
  return base32Decode(s, CODE_BYTES) === null ? undefined : s;
}

function decodeNumber(b: Buffer): NumberEntry | undefined {
  if (b.length !== 6 || b[0] === 0) return undefined;
  return { version: b[0]!, number: b.readUIntBE(1, 5) };
}
