/**
 * Prometheus metrics (prom-client). Labels come only from bounded sets: method names, status names, agency ids
 * of the registry, provider outcomes. Nothing from a request body ever becomes a label.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheObserver, CacheOutcome, CacheProblem, CacheTier } from '../cache/conversion-cache.js';
import type { PoolObserver } from '../engine/pooled-engine.js';
import type { CallObserver, RpcInfo } from '../grpc/call-steps.js';
import { statusName } from '../grpc/status.js';
import { GrpcServerMetrics, grpcCodeLabel, type Rpc } from './grpc-server-metrics.js';
import type { StoreObserver } from '../records/sqlite-store.js';
import type { WriterObserver } from '../records/record-writer.js';
import type { WitnessObserver } from '../records/witness-client.js';
import type { PacingObserver } from '../limits/pacer.js';
import type { RefusalObserver, RefusalReason } from '../limits/refusals.js';
import { HANDSHAKE_REFUSALS, type HandshakeObserver, type HandshakeRefusal } from '../grpc/handshake-refusals.js';
import type { CrlObserver } from '../pki/client-crl.js';
import type { RateLimitObserver } from '../limits/rate-limiter.js';
import type { ProviderCallObserver } from '../service/gateway-service.js';
import type { IdempotencyObserver } from '../service/idempotent-query.js';

/** The two children one finished call observes. */
interface CallSeries {
  readonly requests: { inc(v?: number): void };
  readonly latency: { observe(v: number): void };
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Implements every module's observer interface; the composition root passes it as each module's `observer`. */
export class GatewayMetrics
  implements CallObserver, WriterObserver, ProviderCallObserver, IdempotencyObserver, StoreObserver, RateLimitObserver, PoolObserver, CacheObserver, RefusalObserver, PacingObserver, WitnessObserver, HandshakeObserver, CrlObserver
{
  readonly registry = new Registry();
  /** The standard gRPC server metrics (go-grpc-prometheus names). */
  readonly grpc: GrpcServerMetrics;
  readonly #known: () => ReadonlySet<string>;
  /** Label children made once per label combination (all bounded sets), so an observation allocates no labels. */
  readonly #calls = new Map<string, CallSeries>();
  readonly #histograms = new Map<string, { observe(v: number): void }>();
  readonly requests: Counter<'method' | 'code' | 'agency'>;
  readonly latency: Histogram<'method' | 'code'>;
  readonly providerLatency: Histogram<'provider' | 'outcome'>;
  readonly batchSize: Histogram;
  readonly commitLatency: Histogram;
  readonly recordBacklog: Gauge;
  readonly recordFailures: Counter;
  readonly recordsWritten: Counter;
  readonly cacheLookups: Counter<'tier' | 'outcome'>;
  readonly redisFallbacks: Counter<'feature' | 'reason'>;
  readonly rateLimited: Counter<'agency'>;
  readonly refusals: Counter<'reason'>;
  readonly handshakesRefused: Counter<'reason'>;
  readonly crlNextUpdate: Gauge;
  readonly crlReloadFailures: Counter;
  readonly checkpoints: Counter;
  readonly notReleased: Counter;
  readonly recordsRefused: Counter;
  readonly checkpointSeconds: Histogram;
  readonly cosignatures: Counter<'witness'>;
  readonly witnessFailures: Counter<'witness' | 'status'>;
  readonly bulkPaced: Counter<'agency'>;
  readonly replays: Counter<'agency'>;
  readonly poolTasks: Histogram;
  readonly storeThread: Histogram<'op' | 'ok'>;
  readonly poolTaskSize: Histogram;

  /** `knownAgencies` bounds the agency label: anything else is reported as "unknown". */
  /** `rpcs`: the methods whose grpc_server_* series start at 0 (every code), as go-grpc-prometheus does. */
  constructor(knownAgencies: () => ReadonlySet<string>, opts: { defaultMetrics?: boolean; rpcs?: readonly Rpc[] } = {}) {
    this.#known = knownAgencies;
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named *_total break Prometheus naming rules (promtool flags them); the per-type gauges stay.
      for (const m of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(m);
    }
    const r = [this.registry];
    this.grpc = new GrpcServerMetrics(this.registry, opts.rpcs ?? []);
    this.requests = new Counter({ name: 'linkgw_requests_total', help: 'Finished gRPC calls by method, status code and calling agency.', labelNames: ['method', 'code', 'agency'], registers: r });
    this.latency = new Histogram({ name: 'linkgw_request_duration_seconds', help: 'gRPC call latency by method and status code.', labelNames: ['method', 'code'], buckets: LATENCY_BUCKETS, registers: r });
    this.providerLatency = new Histogram({ name: 'linkgw_provider_call_duration_seconds', help: 'Calls to providing agencies by provider and outcome.', labelNames: ['provider', 'outcome'], buckets: LATENCY_BUCKETS, registers: r });
    this.batchSize = new Histogram({ name: 'linkgw_record_batch_size', help: 'Access records per committed batch.', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000], registers: r });
    this.commitLatency = new Histogram({ name: 'linkgw_record_commit_duration_seconds', help: 'Time to chain, seal and durably commit one batch of access records.', buckets: LATENCY_BUCKETS, registers: r });
    this.recordBacklog = new Gauge({ name: 'linkgw_record_backlog', help: 'Access records waiting for a commit.', registers: r });
    this.recordFailures = new Counter({ name: 'linkgw_record_batch_failures_total', help: 'Batches of access records that could not be committed (their requests failed).', registers: r });
    this.recordsWritten = new Counter({ name: 'linkgw_records_committed_total', help: 'Access records committed durably.', registers: r });
    this.cacheLookups = new Counter({ name: 'linkgw_cache_lookups_total', help: 'Conversion cache lookups by tier (local, redis) and outcome (hit, miss).', labelNames: ['tier', 'outcome'], registers: r });
    this.redisFallbacks = new Counter({ name: 'linkgw_redis_fallbacks_total', help: 'Decisions made on local state because Redis could not be used, by feature and reason.', labelNames: ['feature', 'reason'], registers: r });
    this.notReleased = new Counter({ name: 'linkgw_records_not_released_total', help: 'NOT_RELEASED records written: a record landed after its request had failed, and this says its answer was never released.', registers: r });
    this.recordsRefused = new Counter({ name: 'linkgw_records_refused_total', help: 'Records the store refused for their content (isolated from their batch; only their request failed).', registers: r });
    this.checkpoints = new Counter({ name: 'linkgw_log_checkpoints_total', help: 'Checkpoints of this replica\'s transparency log signed.', registers: r });
    this.checkpointSeconds = new Histogram({ name: 'linkgw_log_checkpoint_sign_seconds', help: 'Time to sign one checkpoint (a file key or an HSM).', buckets: LATENCY_BUCKETS, registers: r });
    this.cosignatures = new Counter({ name: 'linkgw_witness_cosignatures_total', help: 'Checkpoints cosigned by each witness.', labelNames: ['witness'], registers: r });
    this.witnessFailures = new Counter({ name: 'linkgw_witness_failures_total', help: 'Checkpoints a witness did not cosign, by witness and HTTP status (or error).', labelNames: ['witness', 'status'], registers: r });
    this.refusals = new Counter({ name: 'linkgw_refusals_total', help: 'Calls, streams, messages and connections refused or ended by a limit, by reason.', labelNames: ['reason'], registers: r });
    this.handshakesRefused = new Counter({
      name: 'linkgw_handshakes_refused_total',
      help: 'Connections refused at or right after the TLS handshake, by reason (no_certificate, unknown_ca, expired, revoked, crl_stale, unknown_agency, ambiguous_identity, agency_connections, timeout, evicted, tls_error).',
      labelNames: ['reason'],
      registers: r,
    });
    for (const reason of HANDSHAKE_REFUSALS) this.handshakesRefused.inc({ reason }, 0);
    this.crlNextUpdate = new Gauge({ name: 'linkgw_client_crl_next_update_seconds', help: 'Unix time of the earliest nextUpdate of the client CRLs in force (LINKGW_CLIENT_CRL; 0: none says).', registers: r });
    this.crlReloadFailures = new Counter({ name: 'linkgw_client_crl_reload_failures_total', help: 'Re-reads of LINKGW_CLIENT_CRL that failed (the CRLs read before stay in force).', registers: r });
    this.bulkPaced = new Counter({ name: 'linkgw_bulk_paced_seconds_total', help: 'Time bulk issuance messages waited for their agency\'s bulk rate (LINKGW_RATE_LIMIT_BULK).', labelNames: ['agency'], registers: r });
    this.rateLimited = new Counter({ name: 'linkgw_rate_limited_total', help: 'Calls refused by the per-agency rate limit.', labelNames: ['agency'], registers: r });
    this.poolTasks = new Histogram({ name: 'linkgw_pool_task_duration_seconds', help: 'Mapping pool tasks: time from submission to result, queueing included.', buckets: LATENCY_BUCKETS, registers: r });
    this.poolTaskSize = new Histogram({ name: 'linkgw_pool_task_items', help: 'Numbers or codes per mapping pool task (coalesced requests and bulk batches).', buckets: [1, 2, 4, 8, 16, 64, 256, 1024, 2048, 4096], registers: r });
    this.storeThread = new Histogram({ name: 'linkgw_record_store_thread_seconds', help: 'Record store operations timed inside the SQLite worker thread, by operation and success.', labelNames: ['op', 'ok'], buckets: LATENCY_BUCKETS, registers: r });
    this.replays = new Counter({ name: 'linkgw_idempotent_replays_total', help: 'Retried queries answered with their first outcome (same x-request-id).', labelNames: ['agency'], registers: r });
  }

  /** Adds a gauge whose value is read at scrape time. */
  gaugeFrom(name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect() {
      this.set(read());
    } });
  }

  onLookup(tier: CacheTier, outcome: CacheOutcome, count: number): void {
    this.cacheLookups.inc({ tier, outcome }, count);
  }

  onRedisProblem(problem: CacheProblem): void {
    this.redisFallback('cache', problem);
  }

  redisFallback(feature: string, reason: string): void {
    this.redisFallbacks.inc({ feature, reason });
  }

  poolTask(seconds: number, items: number): void {
    this.poolTasks.observe(seconds);
    this.poolTaskSize.observe(items);
  }

  storeOp(op: string, ok: boolean, seconds: number): void {
    const key = `s\u0000${op}\u0000${ok}`;
    let h = this.#histograms.get(key);
    if (!h) {
      h = this.storeThread.labels({ op, ok: ok ? 'true' : 'false' });
      this.#histograms.set(key, h);
    }
    h.observe(seconds);
  }

  limited(agency: string): void {
    this.rateLimited.inc({ agency: this.#agency(agency) });
    this.refusals.inc({ reason: 'rate_limit' });
  }

  refused(reason: RefusalReason): void {
    this.refusals.inc({ reason });
  }

  handshakeRefused(reason: HandshakeRefusal): void {
    this.handshakesRefused.inc({ reason });
  }

  crlLoaded(nextUpdateSeconds: number): void {
    this.crlNextUpdate.set(nextUpdateSeconds);
  }

  crlReloadFailed(): void {
    this.crlReloadFailures.inc();
  }

  paced(agency: string, seconds: number): void {
    this.bulkPaced.inc({ agency: this.#agency(agency) }, seconds);
  }

  replayed(agency: string): void {
    this.replays.inc({ agency: this.#agency(agency) });
  }

  #agency(a: string | undefined): string {
    return a !== undefined && this.#known().has(a) ? a : 'unknown';
  }

  callStarted(rpc: RpcInfo): void {
    this.grpc.started(rpc);
  }

  messageReceived(rpc: RpcInfo): void {
    this.grpc.received(rpc);
  }

  messageSent(rpc: RpcInfo): void {
    this.grpc.sent(rpc);
  }

  callEnded(rpc: RpcInfo, agency: string | undefined, code: number, seconds: number): void {
    this.grpc.handled(rpc, grpcCodeLabel(code), seconds);
    const a = this.#agency(agency);
    const key = `r\u0000${rpc.method}\u0000${code}\u0000${a}`;
    let c = this.#calls.get(key);
    if (!c) {
      const name = statusName(code);
      c = { requests: this.requests.labels({ method: rpc.method, code: name, agency: a }), latency: this.latency.labels({ method: rpc.method, code: name }) };
      this.#calls.set(key, c);
    }
    c.requests.inc();
    c.latency.observe(seconds);
  }

  providerCall(provider: string, outcome: string, seconds: number): void {
    const p = this.#agency(provider);
    const key = `p\u0000${p}\u0000${outcome}`;
    let h = this.#histograms.get(key);
    if (!h) {
      h = this.providerLatency.labels({ provider: p, outcome });
      this.#histograms.set(key, h);
    }
    h.observe(seconds);
  }

  batchCommitted(size: number, seconds: number): void {
    this.batchSize.observe(size);
    this.commitLatency.observe(seconds);
    this.recordsWritten.inc(size);
  }

  recordsNotReleased(n: number): void {
    this.notReleased.inc(n);
  }

  recordRefused(): void {
    this.recordsRefused.inc();
  }

  checkpointSigned(_size: number, seconds: number): void {
    this.checkpoints.inc();
    this.checkpointSeconds.observe(seconds);
  }

  witnessCosigned(witness: string): void {
    this.cosignatures.inc({ witness });
  }

  witnessRefused(witness: string, status: number | 'error'): void {
    this.witnessFailures.inc({ witness, status: String(status) });
  }

  batchFailed(): void {
    this.recordFailures.inc();
  }

  backlog(n: number): void {
    this.recordBacklog.set(n);
  }
}
