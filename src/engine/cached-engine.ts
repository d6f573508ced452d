/**
 * A MappingEngine with the conversion cache in front: issue looks up number→code per number, decode looks up
 * code→number per code; only the misses go to the inner engine, and what it computes is remembered. The cache
 * never fails a call; the inner engine's errors pass through unchanged. Whole bulk messages (`issueBulk`) go
 * straight to the inner engine.
 */
import type { Decoded } from '../core/agency-code.js';
import type { ConversionCache } from '../cache/conversion-cache.js';
import type { BulkIssued, BulkTask } from './bulk-batch.js';
import type { MappingEngine } from './mapping-engine.js';

export class CachedEngine implements MappingEngine {
  readonly kind: MappingEngine['kind'];
  readonly #inner: MappingEngine;
  readonly #cache: ConversionCache;

  constructor(inner: MappingEngine, cache: ConversionCache) {
    this.kind = inner.kind;
    this.#inner = inner;
    this.#cache = cache;
    // Whole bulk messages skip the cache: their numbers already skip Redis (past `redisMaxBatch`), and
    // computing a code in a batch costs less than looking it up.
    if (inner.issueBulk) this.issueBulk = inner.issueBulk;
  }

  readonly issueBulk?: (task: BulkTask, signal?: AbortSignal) => Promise<BulkIssued>;

  async issue(agency: string, numbers: readonly number[], signal?: AbortSignal): Promise<string[]> {
    const cached = await this.#cache.getCodes(agency, numbers);
    const miss: number[] = [];
    for (let i = 0; i < cached.length; i++) if (cached[i] === undefined) miss.push(i);
    if (miss.length === 0) return cached as string[];
    const todo = miss.length === numbers.length ? numbers : miss.map((i) => numbers[i]!);
    const computed = await this.#inner.issue(agency, todo, signal);
    for (let j = 0; j < miss.length; j++) cached[miss[j]!] = computed[j];
    this.#cache.putCodes(agency, todo, computed);
    return cached as string[];
  }

  async decode(agency: string, codes: readonly string[], signal?: AbortSignal): Promise<Decoded[]> {
    const cached = await this.#cache.getNumbers(agency, codes);
    const miss: number[] = [];
    for (let i = 0; i < cached.length; i++) if (cached[i] === undefined) miss.push(i);
    if (miss.length === 0) return cached as Decoded[];
    const todo = miss.length === codes.length ? codes : miss.map((i) => codes[i]!);
    const computed = await this.#inner.decode(agency, todo, signal);
    for (let j = 0; j < miss.length; j++) cached[miss[j]!] = computed[j];
    this.#cache.putNumbers(agency, todo, computed);
    return cached as Decoded[];
  }

  /** Closes the inner engine; the Redis connection belongs to whoever made it. */
  async close(): Promise<void> {
    await this.#inner.close();
  }
}
