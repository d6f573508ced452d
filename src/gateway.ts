/**
 * The composition root: builds every module from settings, starts the gRPC server and the ops listener, and
 * stops them in order. Tests start gateways through this too, on port 0.
 */
import { ServerCredentials } from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { withProviderAddresses } from './core/agency-registry.js';
import { SubjectKeys } from './core/subject-key.js';
import { loadPolicy, Policy } from './config/policy.js';
import type { Settings } from './config/settings.js';
import { InlineEngine, type MappingEngine } from './engine/mapping-engine.js';
import { AutoEngine } from './engine/auto-engine.js';
import { PooledEngine } from './engine/pooled-engine.js';
import { startGatewayServer } from './grpc/gateway-server.js';
import type { HandlerEnv } from './grpc/handlers.js';
import { serverCredentials } from './grpc/tls.js';
import { loadOrCreateKeyring, type Keyring } from './keys/keyring-file.js';
import type { Logger } from './log/logger.js';
import { GatewayMetrics } from './metrics/metrics.js';
import { startOpsServer, type OpsServer } from './metrics/http-server.js';
import { ensureDevPki, pkiFiles } from './pki/dev-pki.js';
import { ProviderClients } from './providers/provider-client.js';
import { startSimulatedProviders, type SimulatedProviders, type SimulationOptions } from './providers/simulated-provider.js';
import { openRecordStore } from './records/open-store.js';
import { SqliteRecordStore } from './records/sqlite-store.js';
import type { RecordStore } from './records/record-store.js';
import { RecordWriter } from './records/record-writer.js';
import { WitnessClient } from './records/witness-client.js';
import type { StoredCheckpoint } from './records/record-store.js';
import { GatewayService } from './service/gateway-service.js';
import { IdempotentQueries } from './service/idempotent-query.js';
import { GatewayError } from './core/errors.js';
import { ConversionCache, CachedEngine } from './cache/conversion-cache.js';
import { RedisConnection, redactRedisUrl } from './redis/redis-connection.js';
import { RateLimiter, parseRateLimitSpec } from './redis/rate-limiter.js';
import { IdempotencyStore } from './redis/idempotency.js';
import { callsInFlight } from './grpc/handlers.js';
import { BindingService } from './service/binding-service.js';
import { RecordsService } from './service/records-service.js';

export interface GatewayOptions {
  readonly log: Logger;
  /** Passed to the simulated providers (tests capture requests or add delay). */
  readonly simulation?: Omit<SimulationOptions, 'caCert'>;
  /** Use this store instead of opening one from settings (tests). */
  readonly store?: RecordStore;
  /** Start the HTTP ops listener (default true). */
  readonly ops?: boolean;
  /** Use this engine instead of building one from settings. */
  readonly engine?: (keyring: Keyring) => Promise<MappingEngine> | MappingEngine;
}

export interface RunningGateway {
  readonly address: string;
  readonly port: number;
  readonly opsAddress: string | undefined;
  readonly keyring: Keyring;
  readonly policy: Policy;
  readonly store: RecordStore;
  readonly writer: RecordWriter;
  readonly metrics: GatewayMetrics;
  readonly simulated: SimulatedProviders | undefined;
  readonly redis: RedisConnection | undefined;
  stop(graceMs?: number): Promise<void>;
}

/** The mapping engine the settings ask for, with its pool's metrics. */
async function buildEngine(s: Settings, keyring: Keyring, metrics: GatewayMetrics): Promise<MappingEngine> {
  if (s.engine === 'inline') return new InlineEngine(keyring);
  const pool = await PooledEngine.create(keyring, {
    ...(s.poolThreads ? { threads: s.poolThreads } : {}),
    onTask: (seconds, items) => metrics.poolTask(seconds, items),
  });
  metrics.gaugeFrom('linkgw_pool_queue_depth', 'Mapping tasks waiting for a worker thread.', () => pool.stats().queueSize);
  metrics.gaugeFrom('linkgw_pool_utilization', 'Share of worker thread time spent on mapping tasks since start (0..1).', () => pool.stats().utilization);
  metrics.gaugeFrom('linkgw_pool_threads', 'Live mapping worker threads.', () => pool.stats().threads);
  return s.engine === 'pool' ? pool : new AutoEngine(new InlineEngine(keyring), pool);
}

export async function startGateway(s: Settings, o: GatewayOptions): Promise<RunningGateway> {
  const log = o.log;
  mkdirSync(s.dataDir, { recursive: true, mode: 0o700 });
  const { keyring, created } = loadOrCreateKeyring(join(s.dataDir, 'keyring.json'));
  if (created) log.info('created a new keyring', { file: join(s.dataDir, 'keyring.json') });

  // The registry as written names the agencies the dev PKI issues certificates for.
  const initial = loadPolicy({ agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile });
  const pkiDir = join(s.dataDir, 'pki');
  const usingDevPki = s.tls.ca === pkiFiles(pkiDir).caCert;
  if (usingDevPki) {
    const cns = new Map([...initial.registry.agencies.values()].map((a) => [a.id, a.certificateCommonName]));
    const issued = await ensureDevPki(pkiDir, cns);
    if (issued.length) log.info('issued development certificates', { dir: pkiDir, agencies: issued });
  }

  const cleanups: (() => Promise<void> | void)[] = [];
  // Every step runs even when one before it fails (the writer must still drain and the store close); the
  // first failure is thrown at the end.
  const cleanup = async () => {
    let first: unknown;
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        first ??= e;
        log.error('shutdown step failed', { err: e });
      }
    }
    if (first !== undefined) throw first;
  };
  try {
    let simulated: SimulatedProviders | undefined;
    if (s.simulate) {
      const f = pkiFiles(pkiDir);
      const agencies = [...initial.registry.agencies.values()]
        .filter((a) => a.roles.has('provider'))
        .map((a) => ({ id: a.id, cert: f.agencyCert(a.id), key: f.agencyKey(a.id), listen: '127.0.0.1:0' }));
      simulated = await startSimulatedProviders(agencies, { caCert: f.caCert, ...o.simulation });
      const sim = simulated;
      cleanups.push(() => sim.close());
      log.info('simulated providing agencies started', { addresses: Object.fromEntries(simulated.addresses) });
    }
    const addresses = simulated?.addresses;
    const policy = new Policy(
      { agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile, ...(addresses ? { adjustRegistry: (r) => withProviderAddresses(r, addresses) } : {}) },
      log,
    );
    cleanups.push(() => policy.close());

    const metrics = new GatewayMetrics(() => new Set(policy.current.registry.agencies.keys()));
    const store = o.store ?? (await openRecordStore({ url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') }));
    if ('syncCommitForced' in store && store.syncCommitForced)
      log.warn('PostgreSQL runs with synchronous_commit = off; the record store sets it on for each of its own transactions');
    if (!o.store) cleanups.push(() => store.close());
    if (store instanceof SqliteRecordStore) store.observe((op, ok, seconds) => metrics.storeOp(op, ok, seconds));
    // The replica's transparency log: checkpoints signed off the request path, pushed to the witnesses.
    const witnesses = s.witnesses.length ? new WitnessClient({ store, witnesses: s.witnesses, log }) : undefined;
    if (witnesses) cleanups.push(() => witnesses.close());
    const writer = new RecordWriter({
      store,
      signer: keyring.sealSigner,
      log,
      observer: metrics,
      appendTimeoutMs: s.recordTimeoutMs,
      logId: s.replicaId,
      origin: s.logOrigin,
      checkpointIntervalMs: s.checkpointIntervalMs,
      ...(witnesses ? { onCheckpoint: (c: StoredCheckpoint) => witnesses.push(c) } : {}),
    });
    cleanups.push(() => writer.close());
    await writer.open();
    let redis: RedisConnection | undefined;
    if (s.redisUrl) {
      const r = new RedisConnection({
        url: s.redisUrl,
        commandTimeoutMs: s.redisCommandTimeoutMs,
        logger: log,
        onStateChange: (state) => (state === 'up' ? log.info('redis is up', { redis: redactRedisUrl(s.redisUrl!) }) : log.warn('redis is down; running on local state', { redis: redactRedisUrl(s.redisUrl!) })),
      });
      redis = r;
      cleanups.push(() => r.close());
      metrics.gaugeFrom('linkgw_redis_up', '1 when Redis answers, 0 while the gateway runs on local state.', () => (r.state() === 'up' ? 1 : 0));
    }
    const inner = o.engine ? await o.engine(keyring) : await buildEngine(s, keyring, metrics);
    const engine =
      s.cache === 'off'
        ? inner
        : new CachedEngine(
            inner,
            new ConversionCache({
              cacheSecret: keyring.cacheSecret,
              generation: keyring.current,
              ...(s.cache === 'local,redis' && redis ? { redis } : {}),
              observer: { onLookup: (tier, outcome, n) => metrics.cacheLookup(tier, outcome, n), onRedisProblem: (reason) => metrics.redisFallback('cache', reason) },
            }),
          );
    cleanups.push(() => engine.close());
    const limits = parseRateLimitSpec(s.rateLimit);
    const limiter = new RateLimiter({
      ...(redis ? { redis } : {}),
      default: limits.default,
      perAgency: limits.perAgency,
      expectedReplicas: s.rateLimitReplicas,
      onFallback: (_agency, reason) => metrics.redisFallback('rate-limit', reason),
    });
    const idempotency = new IdempotencyStore({
      secret: keyring.cacheSecret,
      ...(redis ? { redis } : {}),
      windowMs: s.idempotencyWindowMs,
      onFallback: (reason) => metrics.redisFallback('idempotency', reason),
    });
    metrics.gaugeFrom('linkgw_calls_in_flight', 'gRPC calls being handled.', callsInFlight);
    const providers = new ProviderClients({ ca: s.tls.ca, cert: s.tls.cert, key: s.tls.key });
    cleanups.push(() => providers.close());
    const subjects = new SubjectKeys(keyring.subjectSecret);
    const gateway = new GatewayService({
      engine,
      subjects,
      writer,
      policy: () => policy.current,
      providers,
      providerTimeoutMs: s.providerTimeoutMs,
      observer: metrics,
      idempotent: new IdempotentQueries(idempotency, metrics),
    });
    const records = new RecordsService({ engine, subjects, writer, store });
    const env: HandlerEnv = {
      registry: () => policy.current.registry,
      insecure: s.insecurePlaintext,
      log,
      observer: metrics,
      maxInFlight: s.maxInFlight,
      maxInFlightPerAgency: s.maxInFlightPerAgency,
      admit: async (ctx) => {
        const d = await limiter.take(ctx.agency.id);
        if (d.allowed) return;
        metrics.limited(ctx.agency.id);
        const ms = Number.isFinite(d.retryAfterMs) ? Math.max(1, Math.ceil(d.retryAfterMs)) : 1000;
        throw new GatewayError('RESOURCE_EXHAUSTED', 'rate limit of this agency exceeded; retry later', { details: { 'retry-after-ms': String(ms) } });
      },
    };
    if (s.insecurePlaintext) log.warn('PLAINTEXT MODE: no TLS, and callers name their own agency. Never use this outside a development machine.');
    const creds = s.insecurePlaintext ? ServerCredentials.createInsecure() : serverCredentials(s.tls);
    const bindings = new BindingService({ engine, subjects, writer, store });
    const server = await startGatewayServer(s.listen, creds, env, gateway, records, bindings);
    let draining = false;
    cleanups.push(() => {
      draining = true;
    });
    let ops: OpsServer | undefined;
    if (o.ops !== false) {
      // Not ready while draining, or while the record store is stalled (nothing could be released).
      ops = await startOpsServer(s.metricsListen, metrics.registry, () => !draining && !writer.stalled());
      const ops_ = ops;
      cleanups.push(() => ops_.close());
    }
    const host = s.listen.slice(0, s.listen.lastIndexOf(':'));
    const address = `${host}:${server.port}`;
    log.info('gateway serving', { address, ops: ops?.address, records: store.kind, engine: engine.kind, cache: s.cache, redis: s.redisUrl ? redactRedisUrl(s.redisUrl) : 'off', log: writer.origin, tls: !s.insecurePlaintext });
    let stopped: Promise<void> | undefined;
    return {
      address,
      port: server.port,
      opsAddress: ops?.address,
      keyring,
      policy,
      store,
      writer,
      metrics,
      simulated,
      redis,
      stop: (graceMs = 5000) =>
        (stopped ??= (async () => {
          draining = true;
          await server.shutdown(graceMs);
          await cleanup();
          log.info('gateway stopped');
        })()),
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
