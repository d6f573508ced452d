/**
 * The gateway's gRPC server: LinkageGateway and AccessRecords behind mTLS, grpc.health.v1 and reflection.
 * Shutdown goes in order: health NOT_SERVING, stop taking calls, let calls in flight finish (bounded), then
 * force the rest.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { LinkageGateway } from '../gen/linkage/v1/gateway_pb.js';
import { AccessRecords } from '../gen/linkage/v1/records_pb.js';
import type { GatewayService } from '../service/gateway-service.js';
import type { BindingService } from '../service/binding-service.js';
import type { RecordsService } from '../service/records-service.js';
import { SERVER_OPTIONS } from './channel-options.js';
import { bidiOrdered, serverStreaming, unary, type HandlerEnv } from './handlers.js';
import { addReflection } from './reflection.js';
import { serverDefinition } from './service-definition.js';

export const SERVICE_NAMES = ['linkage.v1.LinkageGateway', 'linkage.v1.AccessRecords'] as const;

export interface RunningServer {
  readonly port: number;
  readonly health: HealthImplementation;
  shutdown(graceMs: number): Promise<void>;
}

export async function startGatewayServer(
  listen: string,
  creds: ServerCredentials,
  env: HandlerEnv,
  gateway: GatewayService,
  records: RecordsService,
  bindings: BindingService,
): Promise<RunningServer> {
  const server = new Server(SERVER_OPTIONS);
  server.addService(serverDefinition(LinkageGateway), {
    issueCode: unary(env, 'IssueCode', (req, ctx) => gateway.issueCode(req as never, ctx)),
    issueCodes: bidiOrdered(env, 'IssueCodes', (ctx) => gateway.issueStream(ctx) as never),
    queryInformation: unary(env, 'QueryInformation', (req, ctx) => gateway.queryInformation(req as never, ctx)),
    reportWrongBinding: unary(env, 'ReportWrongBinding', (req, ctx) => bindings.reportWrongBinding(req as never, ctx)),
  });
  server.addService(serverDefinition(AccessRecords), {
    listAccessRecords: serverStreaming(env, 'ListAccessRecords', (req, ctx, write) => records.list(req as never, ctx, write as never)),
    getCheckpoints: unary(env, 'GetCheckpoints', (_req, ctx) => records.checkpoints(ctx)),
    getConsistencyProof: unary(env, 'GetConsistencyProof', (req, ctx) => records.consistencyProof(req as never, ctx)),
    getRecordProof: unary(env, 'GetRecordProof', (req, ctx) => records.recordProof(req as never, ctx)),
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING', ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, 'NOT_SERVING'])) });
  health.addToServer(server);
  addReflection(server, env, SERVICE_NAMES);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(listen, creds, (e, p) => (e ? reject(e) : resolve(p))));
  health.setStatus('', 'SERVING');
  for (const s of SERVICE_NAMES) health.setStatus(s, 'SERVING');
  return {
    port,
    health,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        for (const s of SERVICE_NAMES) health.setStatus(s, 'NOT_SERVING');
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
