/**
 * The providing agencies of a bench run, in their own process: a bare grpc-js InformationProvider per provider
 * agency (its own port and certificate, mTLS), answering with the simulated agencies' synthetic data. Both the
 * relay baseline and the gateway (LINKGW_SIMULATE=0, an agency registry pointing here) call the same process,
 * so the provider's CPU is measured apart from the target's and is the same work for both. For a code the
 * agency does not know it answers for a known one, so every relayed call is OK (the relay forwards the
 * requester's code unconverted; the gateway sends the provider's own code, which is always known).
 *
 * Logs `{"msg":"baseline serving","address":…,"providers":{agency: address}}` on stderr once bound.
 *
 *   LINKGW_DATA_DIR=<dir with pki/> node --import tsx bench/baseline/provider-server.ts
 */
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { InformationProvider, ProvideResponseSchema, type ProvideRequest, type ProvideResponse } from '../../src/gen/linkage/v1/provider_pb.js';
import { SERVER_OPTIONS } from '../../src/grpc/channel-options.js';
import { serverDefinition } from '../../src/grpc/service-definition.js';
import { simulatedItems, syntheticAnswer } from '../../src/providers/synthetic-data.js';
import { baselineSettings } from './common.js';

export const PROVIDERS = ['tax', 'employment', 'pension', 'welfare'];

/** One bare InformationProvider of `agency` on a free 127.0.0.1 port; resolves to its address. */
export async function startProvider(agency: string, pki: ReturnType<typeof baselineSettings>['pki']): Promise<string> {
  const server = new Server(SERVER_OPTIONS);
  const fallback = new Map<string, string>();
  for (const item of simulatedItems(agency)) {
    for (let i = 0; ; i++) {
      if (syntheticAnswer(agency, `KNOWN${i}`, item)) {
        fallback.set(item, `KNOWN${i}`);
        break;
      }
    }
  }
  server.addService(serverDefinition(InformationProvider), {
    provide: (call: ServerUnaryCall<ProvideRequest, ProvideResponse>, cb: sendUnaryData<ProvideResponse>) => {
      const req = call.request;
      try {
        const a = syntheticAnswer(agency, req.code, req.item) ?? syntheticAnswer(agency, fallback.get(req.item) ?? '', req.item);
        if (!a) return cb({ code: status.NOT_FOUND, details: 'no such person' });
        cb(null, create(ProvideResponseSchema, { payload: a.payload, contentType: a.contentType }));
      } catch {
        cb({ code: status.INVALID_ARGUMENT, details: 'item not served by this agency' });
      }
    },
  });
  const creds = ServerCredentials.createSsl(readFileSync(pki.caCert), [{ cert_chain: readFileSync(pki.agencyCert(agency)), private_key: readFileSync(pki.agencyKey(agency)) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return `127.0.0.1:${port}`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { pki } = baselineSettings();
  const providers: Record<string, string> = {};
  for (const p of PROVIDERS) providers[p] = await startProvider(p, pki);
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stderr.write(JSON.stringify({ level: 'info', msg: 'baseline serving', baseline: 'providers', address: providers[PROVIDERS[0]!], providers }) + '\n');
}
