/**
 * Idempotent queries: a retried call with the same `x-request-id` from the same agency within the window gets
 * the original outcome back instead of causing a second exchange with the provider.
 *
 *   begin(agency, id, deadline)
 *                       SET key 'P'‖owner NX PX ttl, else GET key                       (one Lua script)
 *                         set     → { kind: 'new', token }      the caller does the exchange
 *                         exists  → a sealed outcome            → { kind: 'replay', outcome }
 *                                   an in-progress marker       → { kind: 'in-progress' }
 *   complete(token, o)  if the marker is still ours: SET key seal(o) PX window        (one Lua script)
 *   abandon(token)      if the marker is still ours: DEL key (a retry may try again)  (one Lua script)
 *
 * The in-progress marker lives as long as the request may: until the request's own deadline, and never longer
 * than `inProgressTtlMs` (the gateway sets the provider timeout plus the record timeout, the longest a query
 * can take). A gateway that dies mid-request leaves a marker behind, and its retries are refused (ABORTED,
 * "in progress") only until the first attempt could have ended anyway, not for a fixed minute.
 *
 * Redis holds key = prefix 'idem:' ‖ HMAC(deriveKey(secret, 'idempotency-key'), agency, request id) and, once
 * complete, the outcome sealed with AES-256-GCM (per-entry key from deriveKey(secret, 'idempotency-seal'),
 * AD = key): outcomes may carry provider payloads, and a dump must show nothing. Each request touches one key,
 * so on a cluster it lives on one shard, whichever the hash puts it on.
 *
 * Every outcome is also kept in a bounded in-process map (same window), and when Redis (or the shard of the
 * key) is down, slow or answers garbage, begin() decides from that map alone: one replica still dedupes its
 * own retries, and a request is never failed for want of Redis. `onFallback` reports each such decision.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { KeyedSealer } from '../core/keyed-sealer.js';
import type { RedisConnection, RedisFailure } from '../redis/redis-connection.js';
import { RedisScript } from '../redis/redis-script.js';

export type IdempotencyFallback = RedisFailure | 'unsealable';

export interface IdempotencyOptions {
  /** The keyring's cacheSecret (32 bytes); the keys used here are derived from it for this purpose only. */
  secret: Uint8Array;
  redis?: RedisConnection;
  /** How long a completed outcome is replayed, ms (default 10 min). */
  windowMs?: number;
  /**
   * The longest an unfinished request blocks its retries, ms (default 60 s): at least as long as any request
   * may take. A request's own deadline, when sooner, bounds it further.
   */
  inProgressTtlMs?: number;
  /** Outcomes larger than this are not kept (a retry then runs again), bytes (default 256 KiB). */
  maxOutcomeBytes?: number;
  /** In-process map bounds: entries (default 10 000) and total outcome bytes (default 32 MiB). */
  localMaxEntries?: number;
  localMaxBytes?: number;
  onFallback?: (reason: IdempotencyFallback) => void;
}

/** Opaque: hand it back to complete() or abandon(). */
export interface IdempotencyToken {
  readonly key: string;
  readonly marker: string;
  readonly shared: boolean;
}

export type BeginResult = { kind: 'new'; token: IdempotencyToken } | { kind: 'replay'; outcome: Uint8Array } | { kind: 'in-progress' };

type LocalEntry = { state: 'in-progress'; marker: string } | { state: 'done'; outcome: Buffer };

/** 1 when the marker was set, else the value already there: one round trip, and atomic (no expiry in between). */
const BEGIN = new RedisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 1
end
return redis.call('GET', KEYS[1])
`);
const COMPLETE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`);
const ABANDON = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);
const MARKER = 0x50; // 'P'; sealed values start with 0x01

export class IdempotencyStore {
  readonly #redis: RedisConnection | undefined;
  readonly #sealer: KeyedSealer;
  readonly #window: number;
  readonly #inProgressTtl: number;
  readonly #maxOutcome: number;
  readonly #local: LRUCache<string, LocalEntry>;
  readonly #onFallback: IdempotencyOptions['onFallback'];
  readonly #settled = new WeakSet<IdempotencyToken>();

  constructor(opts: IdempotencyOptions) {
    this.#redis = opts.redis;
    this.#sealer = new KeyedSealer(opts.secret, { name: 'idempotency-key', seal: 'idempotency-seal' }, `${opts.redis?.keyPrefix ?? ''}idem:`);
    this.#window = Math.max(1000, Math.floor(opts.windowMs ?? 600_000));
    this.#inProgressTtl = Math.max(100, Math.floor(opts.inProgressTtlMs ?? 60_000));
    this.#maxOutcome = Math.max(0, opts.maxOutcomeBytes ?? 256 * 1024);
    this.#onFallback = opts.onFallback;
    this.#local = new LRUCache<string, LocalEntry>({
      max: Math.max(1, opts.localMaxEntries ?? 10_000),
      maxSize: Math.max(1024, opts.localMaxBytes ?? 32 * 1024 * 1024),
      sizeCalculation: (e) => (e.state === 'done' ? e.outcome.length + 64 : 64),
      ttl: this.#window,
    });
  }

  /**
   * Starts a request, or tells the caller to replay or wait. `deadline` (ms since the epoch) is when the
   * request ends at the latest; its in-progress marker expires then. Never throws.
   */
  async begin(agency: string, requestId: string, deadline = Number.POSITIVE_INFINITY): Promise<BeginResult> {
    const key = this.#sealer.name('idempotency', agency, requestId);
    const marker = String.fromCharCode(MARKER) + randomBytes(16).toString('base64url');
    const ttl = Math.max(1, Math.ceil(Math.min(this.#inProgressTtl, deadline - Date.now())));
    const seen = this.#local.get(key);
    if (seen?.state === 'done') return { kind: 'replay', outcome: new Uint8Array(seen.outcome) };
    const redis = this.#redis;
    if (redis) {
      const r = await redis.run((c) => BEGIN.runBuffer(c, [key], [marker, ttl]), key);
      if (r.ok) {
        const v = r.value;
        if (v === 1) {
          this.#local.set(key, { state: 'in-progress', marker }, { ttl });
          return { kind: 'new', token: { key, marker, shared: true } };
        }
        if (Buffer.isBuffer(v)) {
          if (v.length > 0 && v[0] === MARKER) return { kind: 'in-progress' };
          const outcome = this.#sealer.open(key, v);
          if (outcome) return { kind: 'replay', outcome: new Uint8Array(outcome.buffer, outcome.byteOffset, outcome.length) };
        }
        this.#report('unsealable');
      } else {
        this.#report(r.reason);
      }
    }
    return this.#beginLocal(key, marker, ttl);
  }

  /**
   * Records the outcome of a 'new' request for its retries. A token settles once: complete or abandon, the
   * first call wins and later ones do nothing. Never throws.
   */
  async complete(token: IdempotencyToken, outcome: Uint8Array): Promise<void> {
    if (this.#settled.has(token)) return;
    const keep = outcome.length <= this.#maxOutcome;
    if (!keep) return this.abandon(token);
    this.#settled.add(token);
    const local = this.#local.get(token.key);
    // Not over another attempt's marker or outcome (ours may have expired and been taken over).
    if (!local || (local.state === 'in-progress' && local.marker === token.marker)) {
      this.#local.set(token.key, { state: 'done', outcome: Buffer.from(outcome) });
    }
    if (!token.shared || !this.#redis) return;
    const sealed = this.#sealer.seal(token.key, outcome);
    const r = await this.#redis.run((c) => COMPLETE.run(c, [token.key], [token.marker, sealed, this.#window]), token.key);
    if (!r.ok) this.#report(r.reason);
  }

  /** Gives up a 'new' request (it failed in a way a retry may fix): its retries start afresh. Never throws. */
  async abandon(token: IdempotencyToken): Promise<void> {
    if (this.#settled.has(token)) return;
    this.#settled.add(token);
    const local = this.#local.get(token.key);
    if (local?.state === 'in-progress' && local.marker === token.marker) this.#local.delete(token.key);
    if (!token.shared || !this.#redis) return;
    const r = await this.#redis.run((c) => ABANDON.run(c, [token.key], [token.marker]), token.key);
    if (!r.ok) this.#report(r.reason);
  }

  #beginLocal(key: string, marker: string, ttl: number): BeginResult {
    const e = this.#local.get(key);
    if (e?.state === 'done') return { kind: 'replay', outcome: new Uint8Array(e.outcome) };
    if (e?.state === 'in-progress') return { kind: 'in-progress' };
    this.#local.set(key, { state: 'in-progress', marker }, { ttl });
    return { kind: 'new', token: { key, marker, shared: false } };
  }

  #report(reason: IdempotencyFallback): void {
    try {
      this.#onFallback?.(reason);
    } catch {
      // a metrics callback never fails a request
    }
  }
}
