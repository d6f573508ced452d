/**
 * The composition root. Each tier has a builder that takes the settings and the tiers it needs, returns its
 * value, and registers how to close it on one lifetime stack, so the gateway stops in the reverse order it was
 * built (server, then services, writer, store, Redis). Tests start gateways through this too, on port 0.
 *
 *   tracing   OpenTelemetry when OTEL_* asks for it (closed last: the last calls' spans are exported)
 *   keys      keyring, development PKI
 *   policy    agency registry and legal-basis table (+ simulated providing agencies in the default setup)
 *   records   record store and the group-commit writer
 *   redis     the optional shared-state connection
 *   engine    where codes are computed (inline, pool, auto), with the optional conversion cache
 *   limits    in-flight budget, rate limits, idempotency
 *   services  the gateway's methods over those tiers
 *   server    the gRPC server and the operator's HTTP listener
 */
import type { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { ConversionCache } from './cache/conversion-cache.js';
import { ensureDirectory } from './config/data-dir.js';
import { loadPolicy, Policy } from './config/policy.js';
import { PACKAGE_ROOT, type Settings } from './config/settings.js';
import { withProviderAddresses } from './core/agency-registry.js';
import { PageTokens } from './core/page-token.js';
import { SubjectKeys } from './core/subject-key.js';
import { AutoEngine } from './engine/auto-engine.js';
import { CachedEngine } from './engine/cached-engine.js';
import { InlineEngine, type MappingEngine } from './engine/mapping-engine.js';
import { PooledEngine } from './engine/pooled-engine.js';
import type { BidiEnv } from './grpc/bidi-ordered.js';
import { gatewayPipeline } from './grpc/call-steps.js';
import { startGatewayServer, type GatewayServices } from './grpc/gateway-server.js';
import { startHealthServer } from './grpc/health-server.js';
import { Health } from './gen/grpc/health/v1/health_pb.js';
import { ServerReflection } from './gen/grpc/reflection/v1/reflection_pb.js';
import { LinkageGateway } from './gen/linkage/v1/gateway_pb.js';
import { AccessRecords } from './gen/linkage/v1/records_pb.js';
import { serverPem } from './grpc/tls.js';
import { ClientCrl } from './pki/client-crl.js';
import { keyringLocation, openKeyring, type Keyring } from './keys/keyring-file.js';
import { Lifetime } from './lifetime.js';
import { InFlight } from './limits/in-flight.js';
import { Pacer } from './limits/pacer.js';
import type { Logger } from './log/logger.js';
import { readBuildInfo, registerBuildInfo } from './metrics/build-info.js';
import { CertificateExpiry } from './metrics/certificate-expiry.js';
import { rpcsOf } from './metrics/grpc-server-metrics.js';
import { startOpsServer, type OpsServer, type Readiness } from './metrics/http-server.js';
import { GatewayMetrics } from './metrics/metrics.js';
import { PolicyMetrics } from './metrics/policy-metrics.js';
import { bootstrapDevPki, pkiFiles } from './pki/dev-pki.js';
import { ProviderClients } from './providers/provider-client.js';
import { GuardedProviders } from './providers/provider-guard.js';
import { registerProviderMetrics } from './metrics/provider-metrics.js';
import { startSimulatedProviders, type SimulatedProviders, type SimulationOptions } from './providers/simulated-provider.js';
import { openRecordStore } from './records/open-store.js';
import type { RecordStore, StoredCheckpoint } from './records/record-store.js';
import { StoreProofs } from './records/log-proofs.js';
import { WitnessClient } from './records/witness-client.js';
import { RecordWriter } from './records/record-writer.js';
import { IdempotencyStore } from './idempotency/idempotency-store.js';
import { RateLimiter, parseRateLimitSpec } from './limits/rate-limiter.js';
import { RedisConnection } from './redis/redis-connection.js';
import { redactRedisUrl } from './redis/redis-url.js';
import { BindingService } from './service/binding-service.js';
import { GatewayService } from './service/gateway-service.js';
import { IdempotentQueries } from './service/idempotent-query.js';
import { RecordsService } from './service/records-service.js';
import type { Tracing } from './tracing/call-trace.js';
import { tracingFromEnvironment } from './tracing/otel-sdk.js';
import { tracedRecords } from './tracing/traced-records.js';

export interface GatewayOptions {
  readonly log: Logger;
  /** Passed to the simulated providers (tests capture requests or add delay). */
  readonly simulation?: Omit<SimulationOptions, 'caCert'>;
  /** Use this store instead of opening one from settings (tests); the caller closes it. */
  readonly store?: RecordStore;
  /** Start the HTTP ops listener (default true). */
  readonly ops?: boolean;
  /** Use this engine instead of building one from settings. */
  readonly engine?: (keyring: Keyring) => Promise<MappingEngine> | MappingEngine;
  /** Record calls' spans here instead of where OTEL_* says (tests: an in-memory exporter); the caller closes it. */
  readonly tracing?: Tracing;
  /** Aborts the start (a SIGTERM while waiting for the record store). */
  readonly signal?: AbortSignal;
}

export interface RunningGateway {
  readonly address: string;
  readonly port: number;
  readonly opsAddress: string | undefined;
  /** The plaintext health port, when LINKGW_HEALTH_LISTEN is set. */
  readonly healthAddress: string | undefined;
  readonly keyring: Keyring;
  readonly policy: Policy;
  readonly store: RecordStore;
  readonly writer: RecordWriter;
  readonly metrics: GatewayMetrics;
  readonly simulated: SimulatedProviders | undefined;
  readonly redis: RedisConnection | undefined;
  readonly inFlight: InFlight;
  stop(graceMs?: number): Promise<void>;
}

/**
 * The development PKI, when the settings point at it (its CA key lives outside the data directory; after the
 * first start the gateway never reads it), then the keyring from its backend (created on first start for the
 * plain file; a wrapped or HSM keyring must exist). The keyring closes last (an HSM session).
 */
async function keysTier(s: Settings, log: Logger, life: Lifetime): Promise<Keyring> {
  ensureDirectory(s.dataDir, 'LINKGW_DATA_DIR');
  const pkiDir = join(s.dataDir, 'pki');
  if (s.tls.ca === pkiFiles(pkiDir).caCert) {
    ensureDirectory(s.devCaDir, 'LINKGW_DEV_CA_DIR');
    // The registry as written names the agencies the dev PKI issues certificates for.
    const { registry } = loadPolicy({ agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile });
    const cns = new Map([...registry.agencies.values()].map((a) => [a.id, a.certificateCommonName]));
    const pki = await bootstrapDevPki(pkiDir, s.devCaDir, cns);
    if (pki.created) log.info('created the development PKI', { dir: pkiDir, caKeyDir: s.devCaDir, agencies: pki.issued });
    if (pki.movedCaKey) log.warn('moved the development CA key out of the data directory', { to: s.devCaDir });
    if (pki.missing.length) log.warn('agencies without a development certificate: issue them with `linkgw pki issue`', { agencies: pki.missing });
  }
  const location = keyringLocation(s);
  const { keyring, created } = await openKeyring(location, { createIfMissing: true });
  if (created) log.info('created a new keyring', { file: location.path });
  log.info('keyring opened', { protection: keyring.protection, codeKeyVersion: keyring.current, sealingKey: keyring.sealSigner.keyId });
  return life.own('keyring', keyring, (k) => k.close());
}

/** The live policy; in the default setup, with the simulated providing agencies it points at. */
async function policyTier(s: Settings, o: GatewayOptions, life: Lifetime): Promise<{ policy: Policy; simulated: SimulatedProviders | undefined }> {
  let simulated: SimulatedProviders | undefined;
  const sources = { agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile };
  if (s.simulate) {
    const f = pkiFiles(join(s.dataDir, 'pki'));
    const agencies = [...loadPolicy(sources).registry.agencies.values()]
      .filter((a) => a.roles.has('provider'))
      .map((a) => ({ id: a.id, cert: f.agencyCert(a.id), key: f.agencyKey(a.id), listen: '127.0.0.1:0' }));
    simulated = life.own('simulated providers', await startSimulatedProviders(agencies, { caCert: f.caCert, ...o.simulation }), (p) => p.close());
    o.log.info('simulated providing agencies started', { addresses: Object.fromEntries(simulated.addresses) });
  }
  const addresses = simulated?.addresses;
  const policy = life.own('policy', new Policy({ ...sources, ...(addresses ? { adjustRegistry: (r) => withProviderAddresses(r, addresses) } : {}) }, o.log), (p) => p.close());
  return { policy, simulated };
}

/** The record store and the only thing that writes it. */
async function recordsTier(s: Settings, o: GatewayOptions, keyring: Keyring, metrics: GatewayMetrics, life: Lifetime): Promise<{ store: RecordStore; writer: RecordWriter }> {
  const store =
    o.store ??
    life.own(
      'record store',
      await openRecordStore(
        { url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') },
        {
          observer: metrics,
          log: o.log,
          timeoutMs: s.recordStoreTimeoutMs,
          startWaitMs: s.recordStoreWaitMs,
          migrate: s.recordsMigrate,
          // Operators and the fault tests find this replica's sessions in pg_stat_activity by this name.
          applicationName: `linkgw/${s.replicaId}`,
          ...(o.signal ? { signal: o.signal } : {}),
        },
      ),
      (st) => st.close(),
    );
  // The replica's transparency log: checkpoints signed off the request path, pushed to the witnesses.
  const witnesses = s.witnesses.length ? life.own('witness client', new WitnessClient({ store, witnesses: s.witnesses, log: o.log, observer: metrics }), (w) => w.close()) : undefined;
  /** When the latest checkpoint was signed (the dashboard's checkpoint age). */
  let checkpointAt: number | null = null;
  const writer = life.own(
    'record writer',
    new RecordWriter({
      store,
      signer: keyring.sealSigner,
      log: o.log,
      observer: metrics,
      appendTimeoutMs: s.recordTimeoutMs,
      lingerMs: s.recordLingerMs,
      logId: s.replicaId,
      origin: s.logOrigin,
      checkpointIntervalMs: s.checkpointIntervalMs,
      onCheckpoint: (c: StoredCheckpoint) => {
        checkpointAt = c.createdAt;
        witnesses?.push(c);
      },
    }),
    (w) => w.close(),
  );
  await writer.open();
  metrics.gaugeFrom('linkgw_record_store_ready', '1 while access records can be written (the store answers commits and idle checks, its files are the ones opened), else 0: /readyz says why.', () => (writer.ready() ? 1 : 0));
  checkpointAt ??= (await store.latestCheckpoints()).find((c) => c.logId === writer.logId)?.createdAt ?? null;
  metrics.gaugeFrom('linkgw_log_checkpoint_timestamp_seconds', 'When this replica\'s log signed its latest checkpoint (seconds since the epoch; NaN before the first).', () =>
    checkpointAt === null ? NaN : checkpointAt / 1000,
  );
  metrics.gaugeFrom('linkgw_person_index_backlog', 'Persons of bulk records whose runs are not merged into the person index yet (lookups read the runs meanwhile; ADR 0104).', () => store.personIndexBacklog());
  metrics.gaugeFrom('linkgw_log_leaves', 'Leaves (access records) of this replica\'s transparency log.', () => writer.size);
  metrics.gaugeFrom('linkgw_log_unsigned_leaves', 'Leaves committed but not yet covered by a signed checkpoint (normal up to one checkpoint interval).', () => writer.size - writer.signedSize);
  return { store, writer };
}

function redisTier(s: Settings, log: Logger, metrics: GatewayMetrics, life: Lifetime): RedisConnection | undefined {
  if (!s.redisUrl) return undefined;
  const r = life.own(
    'redis',
    new RedisConnection({
      url: s.redisUrl,
      keyPrefix: s.redisKeyPrefix,
      commandTimeoutMs: s.redisCommandTimeoutMs,
      logger: log,
    }),
    (c) => c.close(),
  );
  metrics.gaugeFrom('linkgw_redis_up', '1 when Redis answers, 0 while the gateway runs on local state.', () => (r.state() === 'up' ? 1 : 0));
  return r;
}

/** Where codes are computed, as the settings ask, behind the conversion cache when it is on. */
async function engineTier(s: Settings, o: GatewayOptions, keyring: Keyring, redis: RedisConnection | undefined, metrics: GatewayMetrics, life: Lifetime): Promise<MappingEngine> {
  let inner: MappingEngine;
  if (o.engine) inner = await o.engine(keyring);
  else if (s.engine === 'inline') inner = new InlineEngine(keyring);
  else {
    const pool = await PooledEngine.create(keyring, { ...(s.poolThreads ? { threads: s.poolThreads } : {}), observer: metrics });
    metrics.gaugeFrom('linkgw_pool_queue_depth', 'Mapping tasks waiting for a worker thread.', () => pool.stats().queueSize);
    metrics.gaugeFrom('linkgw_pool_utilization', 'Share of worker thread time spent on mapping tasks since start (0..1).', () => pool.stats().utilization);
    metrics.gaugeFrom('linkgw_pool_threads', 'Live mapping worker threads.', () => pool.stats().threads);
    inner = s.engine === 'pool' ? pool : new AutoEngine(new InlineEngine(keyring), pool);
  }
  const engine =
    s.cache === 'off'
      ? inner
      : new CachedEngine(
          inner,
          new ConversionCache({ cacheSecret: keyring.cacheSecret, generation: keyring.current, ...(s.cache === 'local,redis' && redis ? { redis } : {}), observer: metrics }),
        );
  return life.own('mapping engine', engine, (e) => e.close());
}

/** What bounds each agency: calls in flight, rate limits, and the idempotency window of retried queries. */
function limitsTier(s: Settings, keyring: Keyring, policy: Policy, redis: RedisConnection | undefined, metrics: GatewayMetrics) {
  const inFlight = new InFlight({
    max: s.maxInFlight,
    perAgency: s.maxInFlightPerAgency,
    reserve: s.inFlightReserve,
    streamsPerAgency: s.maxStreamsPerAgency,
    agencies: () => policy.current.registry.agencies.size,
    observer: metrics,
  });
  metrics.gaugeFrom('linkgw_calls_in_flight', 'gRPC calls being handled.', () => inFlight.total);
  const limits = parseRateLimitSpec(s.rateLimit);
  const limiter = new RateLimiter({
    ...(redis ? { redis } : {}),
    default: limits.default,
    perAgency: limits.perAgency,
    expectedReplicas: s.rateLimitReplicas,
    onFallback: (_agency, reason) => metrics.redisFallback('rate-limit', reason),
    observer: metrics,
  });
  const bulk = parseRateLimitSpec(s.rateLimitBulk);
  const bulkPacer = new Pacer(
    new RateLimiter({
      ...(redis ? { redis } : {}),
      keyspace: 'rl-bulk',
      default: bulk.default,
      perAgency: bulk.perAgency,
      expectedReplicas: s.rateLimitReplicas,
      onFallback: (_agency, reason) => metrics.redisFallback('bulk-rate-limit', reason),
    }),
    metrics,
  );
  const idempotency = new IdempotencyStore({
    secret: keyring.cacheSecret,
    ...(redis ? { redis } : {}),
    windowMs: s.idempotencyWindowMs,
    // The longest a query can take: a marker left by a gateway that died mid-request blocks no longer.
    inProgressTtlMs: s.providerTimeoutMs + s.recordTimeoutMs,
    onFallback: (reason) => metrics.redisFallback('idempotency', reason),
  });
  return { inFlight, limiter, bulkPacer, idempotency };
}

/** The providing agencies of the registry in force (bounded: the metric labels of their budgets and breakers). */
function providerIds(policy: Policy): string[] {
  const ids: string[] = [];
  for (const a of policy.current.registry.agencies.values()) if (a.roles.has('provider')) ids.push(a.id);
  return ids;
}

function servicesTier(
  s: Settings,
  t: { keyring: Keyring; engine: MappingEngine; writer: RecordWriter; store: RecordStore; policy: Policy; idempotency: IdempotencyStore; bulkPacer: Pacer; metrics: GatewayMetrics; log: Logger },
  life: Lifetime,
): GatewayServices {
  const subjects = new SubjectKeys(t.keyring.subjectSecret);
  const clients = life.own('provider clients', new ProviderClients({ ca: s.tls.ca, cert: s.tls.cert, key: s.tls.key }), (p) => p.close());
  // Each provider's own budget and circuit breaker: one that hangs costs only the queries to it (ADR 0013).
  const providers = new GuardedProviders(clients, {
    maxInFlight: s.providerMaxInFlight,
    failureThreshold: s.providerBreakerFailures,
    openMs: s.providerBreakerOpenMs,
    // A timeout counts against a provider that had a second, or half the provider timeout when that is shorter.
    fairWaitMs: Math.min(1000, s.providerTimeoutMs / 2),
    observer: t.metrics,
    log: t.log,
  });
  registerProviderMetrics(t.metrics.registry, () => providerIds(t.policy), providers);
  const persons = { engine: t.engine, subjects };
  // Each call's wait for its record shows in its trace (and its record id in its access log line).
  const writer = tracedRecords(t.writer);
  return {
    gateway: new GatewayService({
      ...persons,
      writer,
      policy: () => t.policy.current,
      providers,
      providerTimeoutMs: s.providerTimeoutMs,
      observer: t.metrics,
      idempotent: new IdempotentQueries(t.idempotency, t.metrics),
      bulkPacer: t.bulkPacer,
    }),
    records: new RecordsService({ ...persons, writer, store: t.store, proofs: new StoreProofs(t.store), pageTokens: new PageTokens(t.keyring.subjectSecret) }),
    bindings: new BindingService({ ...persons, writer, store: t.store }),
  };
}

export async function startGateway(s: Settings, o: GatewayOptions): Promise<RunningGateway> {
  const log = o.log;
  const life = new Lifetime(log);
  try {
    const build = readBuildInfo(PACKAGE_ROOT);
    const fromEnv = o.tracing ? undefined : await tracingFromEnvironment(process.env, { log, version: build.version, instanceId: s.replicaId });
    const tracing = o.tracing ?? (fromEnv && life.own('tracing', fromEnv, (t) => t.close()));
    const keyring = await keysTier(s, log, life);
    const { policy, simulated } = await policyTier(s, o, life);
    // The agency ids of the live registry, as one Set per registry version (not a new Set per observation).
    let knownOf: { registry: unknown; ids: ReadonlySet<string> } | undefined;
    const knownAgencies = (): ReadonlySet<string> => {
      const registry = policy.current.registry;
      if (knownOf?.registry !== registry) knownOf = { registry, ids: new Set(registry.agencies.keys()) };
      return knownOf.ids;
    };
    const metrics = new GatewayMetrics(knownAgencies, { rpcs: rpcsOf([LinkageGateway, AccessRecords, Health, ServerReflection]) });
    registerBuildInfo(metrics.registry, build);
    policy.observe(new PolicyMetrics(metrics.registry, () => policy.versions));
    if (!s.insecurePlaintext) new CertificateExpiry(metrics.registry).observeFiles({ server: s.tls.cert, ca: s.tls.ca });
    const { store, writer } = await recordsTier(s, o, keyring, metrics, life);
    const redis = redisTier(s, log, metrics, life);
    const engine = await engineTier(s, o, keyring, redis, metrics, life);
    const { inFlight, limiter, bulkPacer, idempotency } = limitsTier(s, keyring, policy, redis, metrics);
    const services = servicesTier(s, { keyring, engine, writer, store, policy, idempotency, bulkPacer, metrics, log }, life);

    const env: BidiEnv & { log: Logger } = {
      pipeline: gatewayPipeline({
        registry: () => policy.current.registry,
        insecure: s.insecurePlaintext,
        log,
        inFlight,
        admission: limiter,
        observer: metrics,
        accessLog: s.accessLog,
        ...(tracing ? { tracing } : {}),
      }),
      admission: limiter,
      observer: metrics,
      idleTimeoutMs: s.streamIdleTimeoutMs,
      refusals: metrics,
      log,
    };
    if (s.insecurePlaintext) log.warn('PLAINTEXT MODE: no TLS, and callers name their own agency. Never use this outside a development machine.');
    // Revocation of agency certificates: unusable CRLs stop the start; a change of the file is re-read.
    const crl = s.clientCrl && !s.insecurePlaintext ? life.own('client CRL', await ClientCrl.open({ file: s.clientCrl, caFile: s.tls.ca, stale: s.clientCrlStale, log, observer: metrics }), (c) => c.close()) : undefined;
    if (crl) metrics.gaugeFrom('linkgw_client_crl_stale', 'Whether a client CRL in force is past its nextUpdate (1), under LINKGW_CLIENT_CRL_STALE.', () => (crl.stale() ? 1 : 0));
    const tls = s.insecurePlaintext
      ? undefined
      : {
          pem: serverPem(s.tls),
          agencyOf: (commonName: string) => policy.current.registry.byCommonName.get(commonName)?.id,
          ...(crl ? { crl: (cert: X509Certificate) => crl.check(cert) } : {}),
        };
    const server = await startGatewayServer(
      s.listen,
      tls,
      env,
      services,
      {
        handshakeTimeoutMs: s.tlsHandshakeTimeoutMs,
        maxConnections: s.maxConnections,
        maxConnectionsPerPeer: s.maxConnectionsPerPeer,
        maxHandshakes: s.maxHandshakes,
        maxConnectionsPerAgency: s.maxConnectionsPerAgency,
        connectionShare: s.connectionShare,
        connectionReserve: s.connectionReserve,
        maxHeaderListBytes: s.maxMetadataBytes,
        maxHeaderPairs: s.maxMetadataEntries,
        maxStreamsPerConnection: s.maxStreamsPerConnection,
        streamBudgetBytes: s.streamBufferBytes,
        agencyBudgetBytes: s.agencyBufferBytes,
        firstMessageTimeoutMs: s.streamIdleTimeoutMs,
        resetsPerConnection: s.streamResetsPerConnection,
        resetsPerAgency: s.streamResetsPerAgency,
      },
      // Ready only while records can be written: not while commits hang, fail (a database down, a full disk)
      // or the log is lost; the writer tries the store by itself meanwhile, so readiness comes back with it.
      () => writer.ready(),
    );
    metrics.gaugeFrom('linkgw_connections', 'Connections open on the agency port (TLS handshakes in progress included).', () => server.connections());
    metrics.gaugeFrom('linkgw_handshakes_in_progress', 'TLS handshakes in progress on the agency port (at most LINKGW_MAX_HANDSHAKES).', () => server.handshakes());
    let draining = false;
    const healthPort = s.healthListen ? life.own('health port', await startHealthServer(s.healthListen, server.health, log, metrics), (x) => x.close()) : undefined;
    let ops: OpsServer | undefined;
    if (o.ops !== false) {
      // Not ready while draining, or while records cannot be written (nothing could be released).
      const readiness = (): Readiness => {
        const why = draining ? 'draining' : writer.notReadyReason();
        return why === undefined ? { ready: true } : { ready: false, reason: why };
      };
      ops = life.own('ops listener', await startOpsServer(s.metricsListen, metrics.registry, readiness), (x) => x.close());
    }
    life.defer('draining', () => {
      draining = true;
    });
    const address = `${s.listen.slice(0, s.listen.lastIndexOf(':'))}:${server.port}`;
    log.info('gateway serving', { address, ops: ops?.address, health: healthPort?.address, records: store.kind, engine: engine.kind, cache: s.cache, redis: s.redisUrl ? redactRedisUrl(s.redisUrl) : 'off', log: writer.origin, tls: !s.insecurePlaintext });
    let stopped: Promise<void> | undefined;
    return {
      address,
      port: server.port,
      opsAddress: ops?.address,
      healthAddress: healthPort?.address,
      keyring,
      policy,
      store,
      writer,
      metrics,
      simulated,
      redis,
      inFlight,
      stop: (graceMs = 5000) =>
        (stopped ??= (async () => {
          draining = true;
          // The whole stop fits in the grace: calls in flight get most of it, and whatever the record store
          // does, records not committed by the deadline fail (nothing released) and the rest closes in time.
          const deadline = Date.now() + graceMs;
          const reserve = Math.min(1500, graceMs / 4);
          writer.shutdownBy(deadline - reserve / 2);
          await server.shutdown(graceMs - reserve);
          await life.close();
          log.info('gateway stopped');
        })()),
    };
  } catch (e) {
    await life.close();
    throw e;
  }
}
