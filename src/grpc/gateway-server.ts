/**
 * The gateway's gRPC server: LinkageGateway and AccessRecords behind mTLS, grpc.health.v1 and reflection, every
 * call through the one call pipeline. Shutdown goes in order: health NOT_SERVING, stop taking calls, let calls
 * in flight finish (bounded), then force the rest.
 */
import { Server } from '@grpc/grpc-js';
import { ServerReflection } from '../gen/grpc/reflection/v1/reflection_pb.js';
import { LinkageGateway } from '../gen/linkage/v1/gateway_pb.js';
import { AccessRecords } from '../gen/linkage/v1/records_pb.js';
import type { BindingService } from '../service/binding-service.js';
import type { GatewayService } from '../service/gateway-service.js';
import type { RecordsService } from '../service/records-service.js';
import type { BidiEnv } from './bidi-ordered.js';
import { SERVER_OPTIONS } from './channel-options.js';
import { Health, healthMethods, HealthState } from './health.js';
import { implement } from './implement.js';
import { applyHeaderLimits, listenGuarded, type HeaderLimits, type ListenerEnv, type ListenerLimits, type TlsGate } from './listener.js';
import { addReflection } from './reflection.js';
import { transportGuard, type TransportGuardOptions } from './transport-guard.js';

export const SERVICE_NAMES = [LinkageGateway.typeName, AccessRecords.typeName] as const;

export interface GatewayServices {
  readonly gateway: GatewayService;
  readonly records: RecordsService;
  readonly bindings: BindingService;
}

export interface RunningServer {
  readonly port: number;
  readonly health: HealthState;
  /** Connections open now (handshakes included). */
  connections(): number;
  /** TLS handshakes in progress now. */
  handshakes(): number;
  shutdown(graceMs: number): Promise<void>;
}

/** What bounds the transport: connections, streams per connection, per-method message sizes, read budgets. */
export interface TransportLimits extends ListenerLimits, HeaderLimits, Omit<TransportGuardOptions, 'receiveLimits' | 'log' | 'observer'> {
  readonly maxStreamsPerConnection: number;
}

/** The largest request each method takes: IssueCodes' 10,000 numbers are ~140 kB encoded, every other request is tiny. */
export const RECEIVE_LIMITS: ReadonlyMap<string, number> = new Map([
  ...[...LinkageGateway.methods, ...AccessRecords.methods].map((m) => [`/${m.parent.typeName}/${m.name}`, 16 * 1024] as const),
  [`/${LinkageGateway.typeName}/${LinkageGateway.method.issueCodes.name}`, 192 * 1024],
  ...Health.methods.map((m) => [`/${Health.typeName}/${m.name}`, 1024] as const),
  ...ServerReflection.methods.flatMap((m) => [`/grpc.reflection.v1.ServerReflection/${m.name}`, `/grpc.reflection.v1alpha.ServerReflection/${m.name}`].map((p) => [p, 16 * 1024] as const)),
]);

/**
 * `ready`: whether the gateway can serve (it can record); health answers NOT_SERVING while it cannot, and from
 * the start of shutdown.
 */
export async function startGatewayServer(
  listen: string,
  /** The TLS handshake and who may connect; undefined: plaintext (development only). */
  tls: TlsGate | undefined,
  env: BidiEnv & { readonly log: TransportGuardOptions['log']; readonly refusals?: TransportGuardOptions['observer'] & ListenerEnv['observer'] },
  s: GatewayServices,
  limits: TransportLimits,
  ready: () => boolean = () => true,
): Promise<RunningServer> {
  const guard = transportGuard({ ...limits, receiveLimits: RECEIVE_LIMITS, log: env.log, ...(env.refusals ? { observer: env.refusals } : {}) });
  // grpc.max_concurrent_streams is advertised in SETTINGS and enforced by HTTP/2 itself: without it one
  // connection could open thousands of header-only streams that no handler ever sees.
  const server = new Server({ ...SERVER_OPTIONS, 'grpc.max_concurrent_streams': limits.maxStreamsPerConnection, interceptors: [guard.interceptor] });
  // Request metadata is bounded by HTTP/2 itself (size and count of a header block) before grpc-js builds any
  // Metadata from it: a block over the bounds resets its stream (the client sees RESOURCE_EXHAUSTED).
  if (!applyHeaderLimits(server, limits)) env.log.error('grpc-js internals are not as expected: request metadata bounds do not apply (Node defaults: 64 KiB, 128 fields)');
  const gateway = implement(LinkageGateway, env, {
    issueCode: (req, ctx) => s.gateway.issueCode(req, ctx),
    issueCodes: (ctx) => s.gateway.issueStream(ctx),
    queryInformation: (req, ctx) => s.gateway.queryInformation(req, ctx),
    reportWrongBinding: (req, ctx) => s.bindings.reportWrongBinding(req, ctx),
  });
  server.addService(gateway.definition, gateway.implementation);
  const records = implement(AccessRecords, env, {
    listAccessRecords: (req, ctx, write) => s.records.list(req, ctx, write),
    getCheckpoints: (_req, ctx) => s.records.checkpoints(ctx),
    getConsistencyProof: (req, ctx) => s.records.consistencyProof(req, ctx),
    getRecordProof: (req, ctx) => s.records.recordProof(req, ctx),
  });
  server.addService(records.definition, records.implementation);
  const health = new HealthState(SERVICE_NAMES, ready);
  const h = implement(Health, env, healthMethods(health), { longLived: ['watch'] });
  server.addService(h.definition, h.implementation);
  addReflection(server, env, SERVICE_NAMES);
  const listener = await listenGuarded(server, listen, limits, { log: env.log, ...(tls ? { tls } : {}), ...(env.refusals ? { observer: env.refusals } : {}) });
  return {
    port: listener.port,
    health,
    connections: () => listener.connections(),
    handshakes: () => listener.handshakes(),
    shutdown: async (graceMs) => {
      health.drain();
      await listener.stopAccepting();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      listener.destroy();
    },
  };
}
