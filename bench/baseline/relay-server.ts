/**
 * Baseline: a bare grpc-js relay with the gateway's services, message shapes and mTLS. QueryInformation is
 * forwarded, as it arrives (no code conversion, no legal-basis check, no record), over mTLS with the gateway's
 * certificate to an InformationProvider of the named provider, started in this process like the gateway's
 * simulated agencies and answering with the same synthetic data; other calls are answered like the echo
 * baseline (the gateway makes no outside call for them either).
 *
 *   LINKGW_DATA_DIR=<dir with pki/> node --import tsx bench/baseline/relay-server.ts
 */
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { QueryInformationResponseSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { InformationProvider, ProvideResponseSchema, type ProvideRequest, type ProvideResponse } from '../../src/gen/linkage/v1/provider_pb.js';
import { clientOptionsFor, SERVER_OPTIONS } from '../../src/grpc/channel-options.js';
import { callUnary, makeClient } from '../../src/grpc/generic-client.js';
import { serverDefinition } from '../../src/grpc/service-definition.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { simulatedItems, syntheticAnswer } from '../../src/providers/synthetic-data.js';
import { baselineSettings, RECORD_ID, recordsPerList, startBaseline } from './common.js';

const { pki } = baselineSettings();
const PROVIDERS = ['tax', 'employment', 'pension', 'welfare'];

/** A bare InformationProvider: the synthetic answer for the code it gets (for a code the simulated agency
 * does not know, the answer for a known one, so every relayed call is answered OK). */
async function startBackend(agency: string): Promise<string> {
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

const creds = channelCredentials({ ca: pki.caCert, cert: pki.gatewayCert, key: pki.gatewayKey });
const clients = new Map<string, ReturnType<typeof makeClient>>();
for (const p of PROVIDERS) {
  const address = await startBackend(p);
  clients.set(p, makeClient(InformationProvider, address, creds, clientOptionsFor(address)));
}

await startBaseline({
  name: 'relay',
  recordsPerList: recordsPerList(),
  query: async (req) => {
    const c = clients.get(req.provider);
    if (!c) throw { code: status.NOT_FOUND, details: 'no such provider' };
    const res = await callUnary(
      c,
      InformationProvider.method.provide,
      { code: req.code, requester: 'welfare', procedure: req.procedure, item: req.item, recordId: RECORD_ID, legalBasisRow: 'B2-002' },
      { deadline: Date.now() + 5000 },
    );
    return create(QueryInformationResponseSchema, { payload: res.payload, contentType: res.contentType, recordId: RECORD_ID, legalBasisRow: 'B2-002' });
  },
});
