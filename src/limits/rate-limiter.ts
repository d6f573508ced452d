/**
 * Per-agency rate limits shared by every replica: GCRA (the generic cell rate algorithm, a token bucket kept
 * as one timestamp) in one Lua script, so a decision is one atomic round trip.
 *
 *   T   = 1000 / ratePerSec                  ms between requests at the sustained rate
 *   TAT = theoretical arrival time           stored at prefix 'rl:' ‖ agency id, in ms, with a PX expiry
 *   a request of cost c at time now passes when max(TAT, now) + c·T − burst·T ≤ now, and then moves TAT there
 *
 * The script reads the clock of Redis (TIME), so replicas with skewed clocks still share one bucket. Keys are
 * agency ids: bounded in number and not personal data.
 *
 * When Redis (on a cluster: the shard holding the agency's key) is down or does not answer within the
 * connection's deadline, the same algorithm runs in process, with rate and burst divided by `expectedReplicas`
 * (so N replicas together stay near the shared limit), and `onFallback` reports it. `take` never throws and
 * never waits longer than the connection's deadline (its command timeout plus a small margin).
 *
 * A request whose cost exceeds the burst can never pass: `{ allowed: false, retryAfterMs: Infinity }`.
 * (In the local fallback, where the burst is divided, the cost is capped at the local burst instead: it would
 * have fitted the shared bucket.)
 */
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { RedisConnection, RedisFailure } from '../redis/redis-connection.js';
import { RedisScript } from '../redis/redis-script.js';

export interface RateLimit {
  /** Sustained requests (cost units) per second, > 0. */
  readonly ratePerSec: number;
  /** Largest burst, ≥ 1. */
  readonly burst: number;
}

export interface RateDecision {
  allowed: boolean;
  /** When not allowed: how long until the same request would pass, in ms (0 when allowed). */
  retryAfterMs: number;
}

export interface RateLimiterOptions {
  /** Shared state; absent: local buckets only. */
  redis?: RedisConnection;
  /** The limit of any agency not in `perAgency`. */
  default: RateLimit;
  perAgency?: ReadonlyMap<string, RateLimit> | Readonly<Record<string, RateLimit>>;
  /** Replicas expected to share the limit; the local fallback gets 1/n of it (default 1). */
  expectedReplicas?: number;
  /** Called each time a decision was made locally because Redis could not be used. */
  onFallback?: (agency: string, reason: RedisFailure) => void;
  /** Bound on agencies with a local bucket (default 10 000). */
  maxLocalBuckets?: number;
  /** Told of every refusal by `admit`. */
  observer?: RateLimitObserver;
  /** Redis keys are `<connection prefix><keyspace>:<agency>` (default `rl`; bulk issuance uses its own). */
  keyspace?: string;
}

export interface RateLimitObserver {
  limited(agency: string): void;
}

const GCRA = new RedisScript(`
local T = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + cost * T
local allow_at = new_tat - burst * T
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0}
`);

function check(l: RateLimit, what: string): RateLimit {
  if (!(l.ratePerSec > 0) || !Number.isFinite(l.ratePerSec)) throw new RangeError(`${what}: rate must be a positive number`);
  if (!(l.burst >= 1) || !Number.isFinite(l.burst)) throw new RangeError(`${what}: burst must be at least 1`);
  return { ratePerSec: l.ratePerSec, burst: l.burst };
}

export class RateLimiter {
  readonly #redis: RedisConnection | undefined;
  readonly #replicas: number;
  readonly #onFallback: RateLimiterOptions['onFallback'];
  readonly #observer: RateLimitObserver | undefined;
  readonly #local: LRUCache<string, { tat: number }>;
  readonly #prefix: string;
  #default: RateLimit;
  #perAgency = new Map<string, RateLimit>();

  constructor(opts: RateLimiterOptions) {
    this.#redis = opts.redis;
    this.#replicas = Math.max(1, opts.expectedReplicas ?? 1);
    this.#onFallback = opts.onFallback;
    this.#observer = opts.observer;
    this.#local = new LRUCache({ max: Math.max(1, opts.maxLocalBuckets ?? 10_000) });
    this.#prefix = `${opts.redis?.keyPrefix ?? ''}${opts.keyspace ?? 'rl'}:`;
    this.#default = check(opts.default, 'default rate limit');
    this.setLimits(opts.default, opts.perAgency);
  }

  /** Replaces the limits (on a configuration reload). Throws on a bad limit, keeping the old ones. */
  setLimits(dflt: RateLimit, perAgency?: RateLimiterOptions['perAgency']): void {
    const d = check(dflt, 'default rate limit');
    const m = new Map<string, RateLimit>();
    const entries = perAgency instanceof Map ? [...perAgency] : Object.entries(perAgency ?? {});
    for (const [a, l] of entries) m.set(a, check(l as RateLimit, `rate limit of ${a}`));
    this.#default = d;
    this.#perAgency = m;
  }

  limitFor(agency: string): RateLimit {
    return this.#perAgency.get(agency) ?? this.#default;
  }

  /** Admission for the call pipeline: takes `cost` or refuses with RESOURCE_EXHAUSTED and a retry hint. */
  async admit(agency: string, cost = 1): Promise<void> {
    const d = await this.take(agency, cost);
    if (d.allowed) return;
    notify(this.#observer, (o) => o.limited(agency));
    const ms = Number.isFinite(d.retryAfterMs) ? Math.max(1, Math.ceil(d.retryAfterMs)) : 1000;
    throw new GatewayError('RESOURCE_EXHAUSTED', 'rate limit of this agency exceeded; retry later', { details: { 'retry-after-ms': String(ms) } });
  }

  /** Takes `cost` from the agency's bucket. Never throws. */
  async take(agency: string, cost = 1): Promise<RateDecision> {
    const limit = this.limitFor(agency);
    if (!(cost > 0) || !Number.isFinite(cost)) cost = 1;
    if (cost > limit.burst) return { allowed: false, retryAfterMs: Number.POSITIVE_INFINITY };
    const redis = this.#redis;
    if (redis) {
      const T = 1000 / limit.ratePerSec;
      const key = this.#prefix + agency;
      const r = await redis.run((c) => GCRA.run(c, [key], [T, limit.burst, cost]), key);
      if (r.ok && Array.isArray(r.value)) {
        const [ok, after] = r.value;
        if (ok === 1) return { allowed: true, retryAfterMs: 0 };
        if (ok === 0 && typeof after === 'number') return { allowed: false, retryAfterMs: Math.max(1, after) };
      }
      const reason: RedisFailure = r.ok ? 'error' : r.reason;
      try {
        this.#onFallback?.(agency, reason);
      } catch {
        // a metrics callback never fails a request
      }
    }
    return this.#takeLocal(agency, limit, cost);
  }

  #takeLocal(agency: string, limit: RateLimit, cost: number): RateDecision {
    const rate = limit.ratePerSec / this.#replicas;
    const burst = Math.max(1, limit.burst / this.#replicas);
    const T = 1000 / rate;
    const c = Math.min(cost, burst);
    const now = performance.now();
    let b = this.#local.get(agency);
    if (!b) this.#local.set(agency, (b = { tat: now }));
    const newTat = Math.max(b.tat, now) + c * T;
    const allowAt = newTat - burst * T;
    if (allowAt > now) return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(allowAt - now)) };
    b.tat = newTat;
    return { allowed: true, retryAfterMs: 0 };
  }
}

/**
 * Parses LINKGW_RATE_LIMIT: comma-separated `agency=rate[/burst]`, `default=…` for everyone else; the burst
 * defaults to the rate (one second's worth). Example: `default=50/100,tax-agency=200/400`.
 */
export function parseRateLimitSpec(spec: string, fallback: RateLimit = { ratePerSec: 100, burst: 200 }): { default: RateLimit; perAgency: Map<string, RateLimit> } {
  let dflt = fallback;
  const perAgency = new Map<string, RateLimit>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*([0-9.]+)(?:\s*\/\s*([0-9.]+))?$/.exec(part);
    if (!m) throw new Error(`LINKGW_RATE_LIMIT: "${part}" is not agency=rate[/burst]`);
    const rate = Number(m[2]);
    const limit = check({ ratePerSec: rate, burst: m[3] === undefined ? Math.max(1, rate) : Number(m[3]) }, `LINKGW_RATE_LIMIT ${m[1]}`);
    if (m[1] === 'default') dflt = limit;
    else perAgency.set(m[1]!, limit);
  }
  return { default: dflt, perAgency };
}
