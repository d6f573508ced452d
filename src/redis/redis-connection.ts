/**
 * The one Redis adapter: builds the ioredis client, tracks whether Redis is usable, and runs commands so that
 * a slow, absent or broken Redis costs a request at most one short timeout and never an error.

 * URL forms (LINKGW_REDIS_URL): see redis-url.ts.
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
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from '../log/logger.js';
import { parseRedisUrl } from './redis-url.js';

export type RedisState = 'up' | 'down';
export type RedisClient = Redis | Cluster;
export type RedisFailure = 'unavailable' | 'timeout' | 'error';
export type RedisResult<T> = { ok: true; value: T } | { ok: false; reason: RedisFailure; error?: unknown };

export interface RedisConnectionOptions {
  /** redis://…, rediss://…, redis+cluster://h1:p1,h2:p2 or rediss+cluster://… (see redis-url.ts). */
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
  readonly #onStateChange: RedisConnectionOptions['onStateChange'];
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
    this.#onStateChange = opts.onStateChange;
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
    try {
      this.#onStateChange?.(state, reason);
    } catch (e) {
      this.#log.error('redis state listener failed', { error: e });
    }
  }

  #logError(msg: string, e: unknown): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 5000) return;
    this.#lastErrorLog = now;
    this.#log.warn(msg, { error: e });
  }
}
