/**
 * Baseline: a bare grpc-js relay with the gateway's services, message shapes and mTLS. QueryInformation is
 * forwarded, as it arrives (no code conversion, no legal-basis check, no record), over mTLS with the gateway's
 * certificate to an InformationProvider of the named provider: in the bench, the provider process the gateway
 * calls too (BENCH_PROVIDERS), else bare providers started in this process; other calls are answered like the
 * echo baseline (the gateway makes no outside call for them either).
 *
 *   LINKGW_DATA_DIR=<dir with pki/> node --import tsx bench/baseline/relay-server.ts
 */
import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { QueryInformationResponseSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { InformationProvider } from '../../src/gen/linkage/v1/provider_pb.js';
import { clientOptionsFor } from '../../src/grpc/channel-options.js';
import { callUnary, makeClient } from '../../src/grpc/generic-client.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { baselineSettings, RECORD_ID, recordsPerList, startBaseline } from './common.js';
import { PROVIDERS, startProvider } from './provider-server.js';

const { pki } = baselineSettings();

/** The providers: those of BENCH_PROVIDERS (JSON, agency → address: the bench's provider process), else bare
 * InformationProviders started in this process (bench/baseline/provider-server.ts). */
const given = process.env.BENCH_PROVIDERS ? (JSON.parse(process.env.BENCH_PROVIDERS) as Record<string, string>) : null;
const creds = channelCredentials({ ca: pki.caCert, cert: pki.gatewayCert, key: pki.gatewayKey });
const clients = new Map<string, ReturnType<typeof makeClient>>();
for (const p of PROVIDERS) {
  const address = given ? given[p] : await startProvider(p, pki);
  if (!address) throw new Error(`BENCH_PROVIDERS names no address for ${p}`);
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
