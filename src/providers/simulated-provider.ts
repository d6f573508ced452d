/**
 * Simulated providing agencies: an InformationProvider server per agency, each on its own address with its
 * own certificate, that accepts calls only from the gateway's certificate and answers from synthetic data.
 * Started by `npm start` in the default setup, by tests, and on its own by `linkgw simulate`.
 */
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, status, type Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { InformationProvider, ProvideResponseSchema, type ProvideRequest, type ProvideResponse } from '../gen/linkage/v1/provider_pb.js';
import { SERVER_OPTIONS } from '../grpc/channel-options.js';
import { Malformed, serverDefinition } from '../grpc/service-definition.js';
import { syntheticAnswer } from './synthetic-data.js';

/** The common name the gateway's client certificate carries (the dev PKI issues it). */
export const GATEWAY_COMMON_NAME = 'linkgw-gateway';

export interface SimulatedAgency {
  readonly id: string;
  readonly cert: string;
  readonly key: string;
  /** host:port; port 0 picks a free one. */
  readonly listen: string;
}

export interface SimulatedProviders {
  /** agency id → bound address */
  readonly addresses: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

export interface SimulationOptions {
  readonly caCert: string;
  /** Called with every request a provider receives, and its metadata (tests capture them). */
  readonly onRequest?: (agency: string, req: ProvideRequest, metadata: Metadata) => void;
  /** Milliseconds to wait before answering (tests of deadlines). */
  readonly delayMs?: number;
}

export async function startSimulatedProviders(agencies: readonly SimulatedAgency[], opts: SimulationOptions): Promise<SimulatedProviders> {
  const servers: Server[] = [];
  const addresses = new Map<string, string>();
  const ca = readFileSync(opts.caCert);
  const gatewayCn = GATEWAY_COMMON_NAME;
  try {
    for (const a of agencies) {
      const server = new Server(SERVER_OPTIONS);
      server.addService(serverDefinition(InformationProvider), {
        provide: (call: ServerUnaryCall<ProvideRequest | Malformed, ProvideResponse>, cb: sendUnaryData<ProvideResponse>) => {
          const peer = call.getAuthContext()?.sslPeerCertificate;
          if (!peer || peer.subject?.CN !== gatewayCn) return cb({ code: status.PERMISSION_DENIED, details: 'only the gateway may call a provider' });
          const req = call.request;
          if (req instanceof Malformed) return cb({ code: status.INVALID_ARGUMENT, details: 'malformed request' });
          opts.onRequest?.(a.id, req, call.metadata);
          const answer = () => {
            try {
              const ans = syntheticAnswer(a.id, req.code, req.item);
              if (!ans) return cb({ code: status.NOT_FOUND, details: 'no such person at this agency' });
              cb(null, create(ProvideResponseSchema, { payload: ans.payload, contentType: ans.contentType }));
            } catch {
              cb({ code: status.INVALID_ARGUMENT, details: 'item not served by this agency' });
            }
          };
          if (opts.delayMs) setTimeout(answer, opts.delayMs);
          else answer();
        },
      });
      const creds = ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(a.cert), private_key: readFileSync(a.key) }], true);
      const port = await new Promise<number>((resolve, reject) => server.bindAsync(a.listen, creds, (e, p) => (e ? reject(e) : resolve(p))));
      const host = a.listen.slice(0, a.listen.lastIndexOf(':'));
      addresses.set(a.id, `${host}:${port}`);
      servers.push(server);
    }
  } catch (e) {
    for (const s of servers) s.forceShutdown();
    throw e;
  }
  return {
    addresses,
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => (s.forceShutdown(), resolve()), 2000);
              s.tryShutdown(() => (clearTimeout(t), resolve()));
            }),
        ),
      ).then(() => undefined),
  };
}
