/**
 * The gateway's gRPC server: LinkageGateway and AccessRecords behind mTLS, grpc.health.v1 and reflection, every
 * call through the one call pipeline. Shutdown goes in order: health NOT_SERVING, stop taking calls, let calls
 * in flight finish (bounded), then force the rest.
 */
import { Server, type ServerCredentials } from '@grpc/grpc-js';
import { LinkageGateway } from '../gen/linkage/v1/gateway_pb.js';
import { AccessRecords } from '../gen/linkage/v1/records_pb.js';
import type { BindingService } from '../service/binding-service.js';
import type { GatewayService } from '../service/gateway-service.js';
import type { RecordsService } from '../service/records-service.js';
import type { BidiEnv } from './bidi-ordered.js';
import { SERVER_OPTIONS } from './channel-options.js';
import { Health, healthMethods, HealthState } from './health.js';
import { implement } from './implement.js';
import { addReflection } from './reflection.js';

export const SERVICE_NAMES = [LinkageGateway.typeName, AccessRecords.typeName] as const;

export interface GatewayServices {
  readonly gateway: GatewayService;
  readonly records: RecordsService;
  readonly bindings: BindingService;
}

export interface RunningServer {
  readonly port: number;
  readonly health: HealthState;
  shutdown(graceMs: number): Promise<void>;
}

/**
 * `ready`: whether the gateway can serve (it can record); health answers NOT_SERVING while it cannot, and from
 * the start of shutdown.
 */
export async function startGatewayServer(listen: string, creds: ServerCredentials, env: BidiEnv, s: GatewayServices, ready: () => boolean = () => true): Promise<RunningServer> {
  const server = new Server(SERVER_OPTIONS);
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
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(listen, creds, (e, p) => (e ? reject(e) : resolve(p))));
  return {
    port,
    health,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        health.drain();
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
