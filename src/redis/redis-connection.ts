/**
 * The one Redis adapter: builds the ioredis client (one node or a cluster, see redis-url.ts), keeps a circuit
 * breaker per node, and runs every operation under one deadline, so that a slow, absent, failing-over or
 * partly missing Redis costs a request at most one short wait and never an error.
 *
 * The deadline. Every `run` settles within `deadlineMs` = the command timeout plus a margin (a fifth of it, at
 * least 10 ms), whatever ioredis does meanwhile. ioredis' `commandTimeout` bounds one attempt only: on a
 * cluster one command may be retried after a failover, redirected (MOVED/ASK), re-queued on CLUSTERDOWN or
 * TRYAGAIN, or wait for a reconnect. Against a 3+3 cluster with a 100 ms command timeout, killing the master of
 * a hot key stalled single calls for 1.3 and 1.5 s before this deadline existed. Past it the caller goes on
 * with local state; the command may still land later (a rate-limit take then also counts locally: within what
 * a rate limit is for). The margin lets ioredis' own per-attempt timeout fire first in the common case.
 *
 * Client settings, and why:
 *   enableAutoPipelining  commands issued in one tick go out as one write per node (one round trip).
 *   commandTimeout        50 ms by default, per attempt: a reply later than that is a miss, never a held request.
 *   enableOfflineQueue    false: while disconnected a command fails at once instead of queueing unboundedly.
 *   maxRetriesPerRequest  1: a command caught by a dropped connection is not retried for seconds.
 *   autoResendUnfulfilledCommands  false: after a reconnect nothing is resent; its caller has moved on (a
 *                         rate-limit take resent would charge twice).
 *   retryStrategy         reconnect forever, backing off to 2 s; the process never gives up on Redis.
 *   cluster: retryDelayOnFailover 0, retryDelayOnClusterDown 0, retryDelayOnTryAgain 0, maxRedirections 3:
 *                         a command to a node that is gone or not serving fails at once (and counts against
 *                         that node's breaker) instead of being retried 100 ms apart up to 16 times; a MOVED or
 *                         ASK storm ends as a failure after three redirections (one MOVED after a resharding is
 *                         normal, and that command still gets its answer).
 *   'error' events        always handled (logged at most once per 5 s): a connection error never crashes the
 *                         process and a failing Redis does not log once per call.
 *
 * What is a failure. No reply within the deadline, a connection error, and the replies that mean "this node
 * does not serve this key now" (CLUSTERDOWN, TRYAGAIN, MOVED, ASK, LOADING, MASTERDOWN, READONLY, too many
 * redirections) count against the node's breaker. Any other error reply (WRONGTYPE, NOSCRIPT, ERR…) means Redis
 * answered: an error for that call, not a sign of being down.
 *
 * Breakers (src/limits/circuit-breaker.ts), one per node: the single server, or on a cluster the master that owns the
 * key's slot in ioredis' slot table (so a caller passes the key it will touch to `run`). A breaker opens after
 * `failureThreshold` failures in a row, or at once when a slot owner's connection closes. While it is open,
 * `run` answers `unavailable` at once without touching Redis: one dead shard costs the keys of its slots
 * nothing after the first few, and the other shards go on serving. Every `probeIntervalMs` an open breaker is
 * probed: a single server with PING; a cluster node by refreshing the slot table first (after a failover its
 * slots have a new owner, whose breaker is closed, so they come back as soon as the cluster has promoted a
 * replica), then with CLUSTER INFO on the node (cluster_state:ok, not PONG: a node of a failed cluster answers
 * PING but refuses every key).
 *
 * State: 'up' when connected and no breaker of a current slot owner is open, 'down' otherwise (so
 * `linkgw_redis_up` is 0 while any shard is away). Each change is logged once ('redis up' / 'redis down'
 * with its reason and node); a node that goes away or comes back while the overall state stays the same is
 * logged once as 'redis node down' / 'redis node up'.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from '../log/logger.js';
import { CircuitBreakers } from '../limits/circuit-breaker.js';
import { keySlot } from './key-slot.js';
import { parseRedisUrl, redactRedisUrl } from './redis-url.js';

export type RedisState = 'up' | 'down';
export type RedisClient = Redis | Cluster;
export type RedisFailure = 'unavailable' | 'timeout' | 'error';
export type RedisResult<T> = { ok: true; value: T } | { ok: false; reason: RedisFailure; error?: unknown };

export interface RedisConnectionOptions {
  /** redis://…, rediss://…, redis+cluster://h1:p1,h2:p2 or rediss+cluster://… (see redis-url.ts). */
  url: string;
  /** Longest wait for any one reply, ms (default 50). */
  commandTimeoutMs?: number;
  /** Added to the command timeout to make the deadline of a whole operation, ms (default a fifth of it, ≥ 10). */
  deadlineMarginMs?: number;
  /** Longest wait to establish a connection, ms (default 1000). */
  connectTimeoutMs?: number;
  /** ioredis maxRetriesPerRequest (default 1). */
  maxRetriesPerRequest?: number;
  /** Prefix of every key the gateway writes (default 'linkgw:'); lets several deployments share one Redis. */
  keyPrefix?: string;
  /** Failures without a reply in a row that open a node's breaker (default 3). */
  failureThreshold?: number;
  /** While a breaker is open, how often its node is probed, ms (default 1000). */
  probeIntervalMs?: number;
  /** Called on every change of the overall state, with a short reason (never personal data). */
  onStateChange?: (state: RedisState, reason: string) => void;
  logger?: Logger;
  /** Extra ioredis options, merged last (for tests and tuning). */
  redisOptions?: Partial<RedisOptions>;
}

/** The breaker of a single server, and of keyless operations on a cluster. */
const WHOLE = '*';
const PAST_DEADLINE = Symbol('past the deadline');
/** Error replies of a node that does not serve the key now: failures, not answers. */
const NOT_SERVING = new Set(['CLUSTERDOWN', 'TRYAGAIN', 'MOVED', 'ASK', 'LOADING', 'MASTERDOWN', 'READONLY']);

interface Failure {
  reason: RedisFailure;
  /** Whether it counts against the node's breaker. */
  counts: boolean;
  why: string;
}

function classify(e: unknown): Failure {
  if (e instanceof Error && e.name === 'ReplyError') {
    const word = e.message.split(' ', 1)[0]!;
    if (NOT_SERVING.has(word)) return { reason: 'error', counts: true, why: `node not serving (${word})` };
    return { reason: 'error', counts: false, why: 'error reply' };
  }
  if (e instanceof Error && e.message === 'Command timed out') return { reason: 'timeout', counts: true, why: 'commands timing out' };
  if (e instanceof Error && e.message.startsWith('Too many Cluster redirections')) return { reason: 'error', counts: true, why: 'too many redirections' };
  return { reason: 'error', counts: true, why: 'commands failing' };
}

function nodeKey(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

export class RedisConnection {
  readonly client: RedisClient;
  readonly keyPrefix: string;
  readonly isCluster: boolean;
  /** The longest any `run` takes, ms: the command timeout plus the margin. */
  readonly deadlineMs: number;
  readonly #url: string;
  readonly #log: Logger;
  readonly #probeMs: number;
  readonly #onStateChange: RedisConnectionOptions['onStateChange'];
  readonly #breakers: CircuitBreakers;
  readonly #probes = new Map<string, NodeJS.Timeout>();
  #state: RedisState = 'down';
  #connected = false;
  #closed = false;
  #lastErrorLog = 0;

  constructor(opts: RedisConnectionOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'linkgw:';
    this.#url = redactRedisUrl(opts.url);
    this.#log = opts.logger ?? silentLogger;
    this.#breakers = new CircuitBreakers(opts.failureThreshold ?? 3);
    this.#probeMs = Math.max(50, opts.probeIntervalMs ?? 1000);
    this.#onStateChange = opts.onStateChange;
    const commandTimeout = opts.commandTimeoutMs ?? 50;
    this.deadlineMs = commandTimeout + Math.max(0, opts.deadlineMarginMs ?? Math.max(10, Math.round(commandTimeout / 5)));
    const common: RedisOptions = {
      commandTimeout,
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
      const cluster = new Cluster(parsed.nodes, {
        redisOptions,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        slotsRefreshTimeout: Math.max(1000, opts.connectTimeoutMs ?? 1000),
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        retryDelayOnTryAgain: 0,
        maxRedirections: 3,
      });
      cluster.on('+node', (node: Redis) => this.#watchNode(node));
      cluster.on('refresh', () => this.#slotsRefreshed());
      cluster.on('node error', (e: unknown) => this.#logError('redis cluster node error', e));
      this.client = cluster;
    } else {
      this.isCluster = false;
      this.client = new Redis(opts.url, common);
    }
    const c = this.client as Redis;
    c.on('ready', () => {
      this.#connected = true;
      this.#breakers.close(WHOLE);
      this.#update('ready');
    });
    c.on('close', () => {
      this.#connected = false;
      this.#update('connection closed');
    });
    c.on('end', () => {
      this.#connected = false;
      this.#update('connection ended');
    });
    c.on('error', (e: unknown) => this.#logError('redis connection error', e));
  }

  state(): RedisState {
    return this.#state;
  }

  /** Whether a `run` for this key (or a keyless one) would be attempted now. */
  usable(key?: string): boolean {
    return this.#connected && !this.#closed && this.#breakers.allows(this.#nodeOf(key));
  }

  /** Indices of `keys` grouped by the node that serves them: one group on a single server. */
  groupByNode(keys: readonly string[]): number[][] {
    if (!this.isCluster) return keys.length ? [keys.map((_, i) => i)] : [];
    const groups = new Map<string, number[]>();
    keys.forEach((k, i) => {
      const n = this.#nodeOf(k);
      const g = groups.get(n);
      if (g) g.push(i);
      else groups.set(n, [i]);
    });
    return [...groups.values()];
  }

  /**
   * Runs one operation against Redis, settled within `deadlineMs`. Never throws, synchronously or not: a
   * failure is a result. `key` is the key (or one of the keys, all of one slot) that the operation touches: on
   * a cluster it picks the breaker; keyless operations share one. While that breaker is open, or while
   * disconnected, the operation is not attempted.
   */
  async run<T>(op: (client: RedisClient) => Promise<T>, key?: string): Promise<RedisResult<T>> {
    const node = this.#nodeOf(key);
    if (!this.#connected || this.#closed || !this.#breakers.allows(node)) return { ok: false, reason: 'unavailable' };
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof PAST_DEADLINE>((r) => (timer = setTimeout(r, this.deadlineMs, PAST_DEADLINE)));
    try {
      const work = (async () => op(this.client))();
      work.catch(() => undefined); // abandoned at the deadline, it may still fail later: nobody is listening
      const value = await Promise.race([work, late]);
      if (value === PAST_DEADLINE) {
        this.#failed(node, 'commands timing out');
        return { ok: false, reason: 'timeout' };
      }
      this.#breakers.succeeded(node);
      return { ok: true, value: value as T };
    } catch (e) {
      if (this.#stillConnecting(node, e)) return { ok: false, reason: 'unavailable', error: e };
      const f = classify(e);
      if (f.counts) this.#failed(node, f.why);
      return { ok: false, reason: f.reason, error: e };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the client; the state stays down. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#probes.values()) clearTimeout(t);
    this.#probes.clear();
    this.#set('down', 'closed');
    const c = this.client;
    try {
      await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500).unref())]);
    } catch {
      // not connected: nothing to say goodbye to
    }
    c.disconnect();
  }

  /** The breaker a key belongs to: its slot's master on a cluster (while the slot table knows it). */
  #nodeOf(key: string | undefined): string {
    if (!this.isCluster || key === undefined) return WHOLE;
    return (this.client as Cluster).slots[keySlot(key)]?.[0] ?? WHOLE;
  }

  /** Whether a cluster node is the master of any slot in ioredis' slot table. */
  #owns(node: string): boolean {
    if (node === WHOLE) return true;
    const slots = (this.client as Cluster).slots;
    for (let i = 0; i < slots.length; i++) if (slots[i]?.[0] === node) return true;
    return false;
  }

  #failed(node: string, why: string): void {
    if (this.#breakers.failed(node)) this.#opened(node, why);
  }

  #opened(node: string, why: string): void {
    this.#changed(node, 'down', why);
    this.#scheduleProbe(node);
    // The slot table may already know the node's heir (a failover that happened while nobody asked).
    if (node !== WHOLE) (this.client as Cluster).refreshSlotsCache();
  }

  /**
   * ioredis refuses a command at once ("Connection is closed.") for a cluster node whose connection is still
   * being set up. That is no sign of a bad node: a replica promoted by a failover is connected only when it
   * gets its first command, and three commands in that instant would open its breaker. (A node that cannot be
   * reached closes its connection, and that opens the breaker: see #watchNode.)
   */
  #stillConnecting(node: string, e: unknown): boolean {
    if (node === WHOLE || !(e instanceof Error) || e.message !== 'Connection is closed.') return false;
    const status = (this.client as Cluster).nodes('all').find((n) => nodeKey(n) === node)?.status;
    return status === 'connecting' || status === 'connect' || status === 'wait';
  }

  /**
   * Every node is connected as soon as ioredis knows it (replicas too, so that one promoted by a failover is
   * ready to serve), and a slot owner whose connection closes is gone: no need to wait for failures to know it.
   */
  #watchNode(node: Redis): void {
    if (node.status === 'wait') node.connect().catch(() => undefined);
    node.on('close', () => {
      const key = nodeKey(node);
      if (this.#closed || !this.#owns(key)) return;
      if (this.#breakers.trip(key)) this.#opened(key, 'connection closed');
    });
  }

  /** After a slot-table refresh, open breakers of nodes that own nothing any more no longer matter. */
  #slotsRefreshed(): void {
    for (const n of this.#breakers.open()) {
      if (n === WHOLE || this.#owns(n)) continue;
      if (this.#breakers.close(n)) this.#changed(n, 'up', 'its slots moved to another node');
    }
  }

  #scheduleProbe(node: string): void {
    if (this.#closed || this.#probes.has(node)) return;
    const t = setTimeout(() => {
      this.#probes.delete(node);
      void this.#probe(node);
    }, this.#probeMs);
    t.unref();
    this.#probes.set(node, t);
  }

  async #probe(node: string): Promise<void> {
    if (this.#closed || this.#breakers.allows(node)) return;
    if (!this.#connected) {
      // A single server's 'ready' event closes its breaker; a cluster's nodes go on being probed.
      if (node !== WHOLE) this.#scheduleProbe(node);
      return;
    }
    const verdict = node === WHOLE ? ((await this.#within(this.client.ping())) === 'PONG' ? 'up' : 'down') : await this.#probeNode(node);
    if (this.#closed) return;
    if (verdict === 'down') return this.#scheduleProbe(node);
    if (this.#breakers.close(node)) this.#changed(node, 'up', verdict === 'up' ? 'answering again' : 'its slots moved to another node');
  }

  async #probeNode(node: string): Promise<'up' | 'gone' | 'down'> {
    const cluster = this.client as Cluster;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(this.#probeMs, 1000));
      t.unref();
      cluster.refreshSlotsCache(() => {
        clearTimeout(t);
        resolve();
      });
    });
    if (!this.#owns(node)) return 'gone';
    const instance = cluster.nodes('master').find((n) => nodeKey(n) === node);
    if (!instance) return 'down';
    const info = await this.#within(instance.cluster('INFO'));
    return typeof info === 'string' && info.includes('cluster_state:ok') ? 'up' : 'down';
  }

  /** The value of `p` if it settles well within the deadline, else undefined. Never throws. */
  async #within<T>(p: Promise<T>): Promise<T | undefined> {
    p.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      const v = await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(r, this.deadlineMs, undefined)))]);
      return v;
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A breaker opened or closed: logged once, as a change of the overall state when it is one. */
  #changed(node: string, to: RedisState, why: string): void {
    const label = node === WHOLE ? why : `node ${node}: ${why}`;
    if (this.#update(label, node)) return;
    if (node === WHOLE || this.#closed) return;
    if (to === 'up') this.#log.info('redis node up', { redis: this.#url, node, reason: why });
    else this.#log.warn('redis node down', { redis: this.#url, node, reason: why });
  }

  /** Recomputes the overall state; true when it changed. */
  #update(reason: string, node?: string): boolean {
    let next: RedisState = this.#connected ? 'up' : 'down';
    if (next === 'up') for (const n of this.#breakers.open()) if (this.#owns(n)) next = 'down';
    return this.#set(next, reason, node);
  }

  #set(state: RedisState, reason: string, node?: string): boolean {
    if (this.#closed && state === 'up') return false;
    if (state === this.#state) return false;
    this.#state = state;
    const fields = { redis: this.#url, reason, ...(node && node !== WHOLE ? { node } : {}) };
    if (state === 'up') this.#log.info('redis up', fields);
    else this.#log.warn('redis down; running on local state', fields);
    try {
      this.#onStateChange?.(state, reason);
    } catch (e) {
      this.#log.error('redis state listener failed', { error: e });
    }
    return true;
  }

  #logError(msg: string, e: unknown): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < 5000) return;
    this.#lastErrorLog = now;
    this.#log.warn(msg, { redis: this.#url, error: e });
  }
}
