/**
 * The one Redis adapter: builds the ioredis client, tracks whether Redis is usable, and runs commands so that
 * a slow, absent or broken Redis costs a request at most one short timeout and never an error.
 *
 * URL forms (LINKGW_REDIS_URL):
 *   redis://[user:pass@]host:port[/db]              one node (ioredis parses it; `rediss://` for TLS)
 *   redis+cluster://[user:pass@]h1:p1,h2:p2[,…]     Redis Cluster, the listed nodes as seeds
 *   rediss+cluster://…                              Redis Cluster over TLS
 * A cluster has no database number; a path after the node list is refused.
 *
 * Client settings, and why:
 *   enableAutoPipelining  commands issued in one tick go out as one write (one syscall, one round trip).
 *   commandTimeout        50 ms by default: a reply later than that is a miss, never a held request.
 *   enableOfflineQueue    false: while disconnected a command fails at once instead of queueing unboundedly.
 *   maxRetriesPerRequest  1: a command caught by a dropped connection is not retried for seconds.
 *   autoResendUnfulfilledCommands  false: after a reconnect nothing is resent; its caller has moved on (a
 *                         rate-limit take resent would charge twice).
 *   retryStrategy         reconnect forever, backing off to 2 s; the process never gives up on Redis.
 *   'error' events        always handled (logged, rate-limited): a connection error never crashes the process.
 *
 * State: 'up' when connected and answering; 'down' when disconnected, or when `failureThreshold` commands in
 * a row failed without a reply (timeouts, connection errors). While down, `run` answers `unavailable` at once
 * without touching Redis (a circuit breaker), so a stalled Redis costs each request nothing after the first
 * few; every `probeIntervalMs` a PING probes it and the first answer brings the state back up. A Redis error
 * reply (WRONGTYPE, NOSCRIPT…) means Redis answered: it is an error for that call, not a sign of being down.
 *
 * `RedisSealer` is the keyed-hash-and-seal helper shared by every module that writes to Redis: key names are
 * HMACs of a length-prefixed input, values are AES-256-GCM sealed with the key name as associated data.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { deriveKey } from '../core/key-derivation.js';
import { silentLogger, type Logger } from '../log/logger.js';

export type RedisState = 'up' | 'down';
export type RedisClient = Redis | Cluster;
export type RedisFailure = 'unavailable' | 'timeout' | 'error';
export type RedisResult<T> = { ok: true; value: T } | { ok: false; reason: RedisFailure; error?: unknown };

export interface RedisConnectionOptions {
  /** redis://…, rediss://…, redis+cluster://h1:p1,h2:p2 or rediss+cluster://… (see the file header). */
  url: string;
  /** Longest wait for any one reply, ms (default 50). */
  commandTimeoutMs?: number;
  /** Longest wait to establish a connection, ms (default 1000). */
  connectTimeoutMs?: number;
  /** ioredis maxRetriesPerRequest (default 1). */
  maxRetriesPerRequest?: number;
  /** Prefix of every key the gateway writes (default 'linkgw:'); lets several deployments share one Redis. */
  keyPrefix?: string;
  /** Failures without a reply in a row that mark Redis down (default 3). */
  failureThreshold?: number;
  /** While down, how often a PING probes Redis, ms (default 1000). */
  probeIntervalMs?: number;
  /** Called on every change of state, with a short reason (never personal data). */
  onStateChange?: (state: RedisState, reason: string) => void;
  logger?: Logger;
  /** Extra ioredis options, merged last (for tests and tuning). */
  redisOptions?: Partial<RedisOptions>;
}

interface ParsedUrl {
  cluster: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  tls: boolean;
}

/** Parses a cluster URL; returns null for a single-node URL (left to ioredis). Throws on a malformed one. */
export function parseRedisUrl(url: string): ParsedUrl | null {
  const m = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?(?:[?#].*)?$/.exec(url);
  if (!m) {
    if (/^rediss?\+cluster:/.test(url)) throw new Error('LINKGW_REDIS_URL: malformed cluster URL');
    if (!/^rediss?:\/\//.test(url)) throw new Error('LINKGW_REDIS_URL: redis://, rediss://, redis+cluster:// or rediss+cluster://');
    return null;
  }
  const [, scheme, userinfo, hostlist, path] = m;
  if (path && path !== '/') throw new Error('LINKGW_REDIS_URL: a cluster URL has no database number');
  const nodes = hostlist!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    const host = i > 0 ? hp.slice(0, i).replace(/^\[|\]$/g, '') : hp;
    const port = i > 0 ? Number(hp.slice(i + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('LINKGW_REDIS_URL: bad cluster node');
    return { host, port };
  });
  const out: ParsedUrl = { cluster: true, nodes, tls: scheme === 'rediss' };
  if (userinfo) {
    const j = userinfo.indexOf(':');
    const user = decodeURIComponent(j < 0 ? userinfo : userinfo.slice(0, j));
    if (user) out.username = user;
    if (j >= 0) out.password = decodeURIComponent(userinfo.slice(j + 1));
  }
  return out;
}

/** The URL with any password masked, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}

function isReplyError(e: unknown): boolean {
  return e instanceof Error && e.name === 'ReplyError';
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && e.message === 'Command timed out';
}

export class RedisConnection {
  readonly client: RedisClient;
  readonly keyPrefix: string;
  readonly isCluster: boolean;
  readonly #log: Logger;
  readonly #threshold: number;
  readonly #probeMs: number;
  readonly #listeners = new Set<(state: RedisState, reason: string) => void>();
  #state: RedisState = 'down';
  #connected = false;
  #failures = 0;
  #probe: NodeJS.Timeout | undefined;
  #closed = false;
  #lastErrorLog = 0;

  constructor(opts: RedisConnectionOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'linkgw:';
    this.#log = opts.logger ?? silentLogger;
    this.#threshold = Math.max(1, opts.failureThreshold ?? 3);
    this.#probeMs = Math.max(50, opts.probeIntervalMs ?? 1000);
    if (opts.onStateChange) this.#listeners.add(opts.onStateChange);
    const common: RedisOptions = {
      commandTimeout: opts.commandTimeoutMs ?? 50,
      connectTimeout: opts.connectTimeoutMs ?? 1000,
      maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 1,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      ...opts.redisOptions,
    };
    const parsed = parseRedisUrl(opts.url);
    if (parsed) {
      this.isCluster = true;
      const redisOptions: ClusterOptions['redisOptions'] = { ...common };
      delete (redisOptions as RedisOptions).retryStrategy;
      delete (redisOptions as RedisOptions).enableOfflineQueue;
      if (parsed.username) redisOptions.username = parsed.username;
      if (parsed.password) redisOptions.password = parsed.password;
      if (parsed.tls) redisOptions.tls = {};
      this.client = new Cluster(parsed.nodes, {
        redisOptions,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        slotsRefreshTimeout: Math.max(1000, opts.connectTimeoutMs ?? 1000),
      });
    } else {
      this.isCluster = false;
      this.client = new Redis(opts.url, common);
    }
    const c = this.client as Redis;
    c.on('ready', () => {
      this.#connected = true;
      this.#failures = 0;
      this.#set('up', 'ready');
    });
    c.on('close', () => {
      this.#connected = false;
      this.#set('down', 'connection closed');
    });
    c.on('end', () => {
      this.#connected = false;
      this.#set('down', 'connection ended');
    });
    c.on('error', (e: unknown) => this.#logError('redis connection error', e));
    if (this.isCluster) c.on('node error', (e: unknown) => this.#logError('redis cluster node error', e));
  }

  state(): RedisState {
    return this.#state;
  }

  /** Adds a state listener; returns a function that removes it. */
  onStateChange(listener: (state: RedisState, reason: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs one operation against Redis. Never throws, synchronously or not: a failure is a result. While Redis
   * is down the operation is not attempted.
   */
  async run<T>(op: (client: RedisClient) => Promise<T>): Promise<RedisResult<T>> {
    if (this.#state !== 'up') return { ok: false, reason: 'unavailable' };
    try {
      const value = await op(this.client);
      this.#failures = 0;
      return { ok: true, value };
    } catch (e) {
      if (isReplyError(e)) return { ok: false, reason: 'error', error: e };
      if (++this.#failures >= this.#threshold) this.#trip(isTimeout(e) ? 'commands timing out' : 'commands failing');
      return { ok: false, reason: isTimeout(e) ? 'timeout' : 'error', error: e };
    }
  }

  /** Closes the client; the state stays down. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probe) clearTimeout(this.#probe);
    this.#set('down', 'closed');
    const c = this.client;
    try {
      await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500).unref())]);
    } catch {
      // not connected: nothing to say goodbye to
    }
    c.disconnect();
  }

  #trip(reason: string): void {
    if (this.#state === 'down') return;
    this.#set('down', reason);
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#closed || this.#probe) return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      if (this.#closed || this.#state === 'up') return;
      if (!this.#connected) return; // the 'ready' event brings it back up
      (async () => this.client.ping())().then(
        () => {
          this.#failures = 0;
          if (this.#connected) this.#set('up', 'answering again');
        },
        () => this.#scheduleProbe(),
      );
    }, this.#probeMs);
    this.#probe.unref();
  }

  #set(state: RedisState, reason: string): void {
    if (this.#closed && state === 'up') return;
    if (state === this.#state) return;
    this.#state = state;
    if (state === 'up') this.#log.info('redis up', { reason });
    else this.#log.warn('redis down', { reason });
    for (const l of this.#listeners) {
      try {
        l(state, reason);
      } catch (e) {
        this.#log.error('redis state listener failed', { error: e });
      }
    }
  }

  #logError(msg: string, e: unknown): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 5000) return;
    this.#lastErrorLog = now;
    this.#log.warn(msg, { error: e });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Lua scripts.

/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) when the node answers NOSCRIPT
 * (first use, a restart, a failover, another cluster node).
 *
 * Not ioredis `defineCommand`: an auto-pipeline copies the defined commands when it is created, so a command
 * defined while a pipeline is pending (any command issued earlier in the same tick) is missing from it; the
 * call then throws inside ioredis, the pipeline's callbacks shift by one, and an uncaught "results[i] is not
 * iterable" TypeError crashes the process (ioredis issue #1931; reproduced here with 5.11.1). EVALSHA and EVAL
 * are ordinary commands, present on every pipeline, and auto-pipelined like any other.
 */
export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(isReplyError(e) && String((e as Error).message).startsWith('NOSCRIPT'))) throw e;
      return await client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Keyed key names and sealed values.

const SEAL_FORMAT = 0x01;
const NONCE = 12;
const TAG = 16;
/** Bytes of HMAC kept in a key name: 128 bits, so collisions are out of reach for any realistic key count. */
const NAME_BYTES = 16;

/**
 * Key names and sealed values for one purpose (cache, idempotency…), under keys derived from one secret.
 *
 *   name(parts)       = prefix ‖ base64url(HMAC-SHA256(K_name, len ':' part ‖ len ':' part …)[0..16])
 *   seal(name, plain) = 0x01 ‖ nonce ‖ AES-256-GCM(K_entry, nonce, plain, AD = name) ‖ tag
 *   K_entry           = HMAC-SHA256(K_seal, name)
 *
 * The parts are length-prefixed, so no choice of agency id or code can make two inputs collide. A per-entry key
 * keeps AES-GCM's random-nonce bound (2^32 seals per key) out of reach however long the secret lives: each
 * entry key seals only the few values ever written under that one name. The name as associated data (and in
 * the entry key) means a value copied to another name does not open.
 */
export class RedisSealer {
  readonly #nameKey: Buffer;
  readonly #sealKey: Buffer;
  readonly #prefix: string;

  constructor(secret: Uint8Array, purposes: { name: string; seal: string }, prefix: string) {
    if (secret.length < 32) throw new RangeError('the cache secret must be at least 32 bytes');
    if (purposes.name === purposes.seal) throw new RangeError('name and seal purposes must differ');
    this.#nameKey = deriveKey(secret, purposes.name);
    this.#sealKey = deriveKey(secret, purposes.seal);
    this.#prefix = prefix;
  }

  name(...parts: (string | number)[]): string {
    // Each part as `<length>:<part>`: a prefix code, so the concatenation parses back one way only.
    let input = '';
    for (const p of parts) {
      const s = typeof p === 'number' ? String(p) : p;
      input += `${s.length}:${s}`;
    }
    const mac = createHmac('sha256', this.#nameKey).update(input, 'utf8').digest();
    return this.#prefix + mac.toString('base64url', 0, NAME_BYTES);
  }

  seal(name: string, plain: Uint8Array): Buffer {
    const key = createHmac('sha256', this.#sealKey).update(name, 'utf8').digest();
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.from(name, 'utf8'));
    const body = c.update(plain);
    c.final();
    key.fill(0);
    return Buffer.concat([Buffer.of(SEAL_FORMAT), nonce, body, c.getAuthTag()]);
  }

  /** The plaintext, or null for anything that is not a value sealed under this name. Never throws. */
  open(name: string, sealed: unknown): Buffer | null {
    if (!Buffer.isBuffer(sealed) || sealed.length < 1 + NONCE + TAG || sealed[0] !== SEAL_FORMAT) return null;
    const key = createHmac('sha256', this.#sealKey).update(name, 'utf8').digest();
    try {
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + NONCE));
      d.setAAD(Buffer.from(name, 'utf8'));
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      const plain = d.update(sealed.subarray(1 + NONCE, sealed.length - TAG));
      d.final();
      return plain;
    } catch {
      return null;
    } finally {
      key.fill(0);
    }
  }
}
