/**
 * The bidirectional-stream adapter keeps per-stream state in arrival order even when admissions finish out of
 * order (a Redis-backed rate limit can answer a later message first). A real grpc-js server and client on
 * port 0, plaintext: the property is the adapter's, not TLS's.
 */
import { create } from '@bufbuild/protobuf';
import { credentials, Metadata, Server, ServerCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgencyRegistry } from '../../src/core/agency-registry.js';
import {
  IssueCodeResultSchema,
  IssueCodesRequestSchema,
  IssueCodesResponseSchema,
  LinkageGateway,
  type IssueCodesRequest,
  type IssueCodesResponse,
} from '../../src/gen/linkage/v1/gateway_pb.js';
import { makeClient } from '../../src/grpc/generic-client.js';
import { bidiOrdered, type BidiEnv } from '../../src/grpc/bidi-ordered.js';
import { gatewayPipeline } from '../../src/grpc/call-steps.js';
import { INSECURE_AGENCY_HEADER } from '../../src/grpc/identity.js';
import { rpcInfo } from '../../src/grpc/implement.js';
import { serverDefinition } from '../../src/grpc/service-definition.js';
import { InFlight } from '../../src/limits/in-flight.js';
import { silentLogger } from '../../src/log/logger.js';

const registry = parseAgencyRegistry({
  agencies: [{ id: 'pension', name: 'Pension', roles: ['requester'], certificate: { commonName: 'pension' } }],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: Server;
let address: string;
let admissions = 0;
const inFlight = new InFlight({ max: 100, perAgency: 100 });
const callsInFlight = () => inFlight.total;
const env: BidiEnv = {
  pipeline: gatewayPipeline({ registry: () => registry, insecure: true, log: silentLogger, inFlight }),
  // The first message of each stream is admitted last.
  admission: {
    admit: async () => {
      if (admissions++ % 3 === 0) await sleep(150);
    },
  },
};

beforeAll(async () => {
  server = new Server();
  server.addService(serverDefinition(LinkageGateway), {
    issueCodes: bidiOrdered(env, rpcInfo(LinkageGateway, LinkageGateway.method.issueCodes), () => {
      let offset = 0;
      return (req: IssueCodesRequest) => {
        const at = offset;
        offset += req.personalNumbers.length;
        return async () =>
          create(IssueCodesResponseSchema, { offset: BigInt(at), results: req.personalNumbers.map((n) => create(IssueCodeResultSchema, { code: `for-${n}` })) });
      };
    }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  address = `127.0.0.1:${port}`;
});
afterAll(() => {
  server?.forceShutdown();
});

describe('bidiOrdered', () => {
  it('gives each message the offset of its arrival, whatever order admissions finish in', async () => {
    const client = makeClient(LinkageGateway, address, credentials.createInsecure());
    const md = new Metadata();
    md.set(INSECURE_AGENCY_HEADER, 'pension');
    const fn = (client as unknown as Record<string, Function>)['issueCodes']!;
    const call: ClientDuplexStream<IssueCodesRequest, IssueCodesResponse> = fn.call(client, md, { deadline: Date.now() + 10_000 });
    const got: IssueCodesResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: IssueCodesResponse) => got.push(r));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    const messages = [['a1', 'a2', 'a3'], ['b1'], ['c1', 'c2']];
    for (const m of messages) call.write(create(IssueCodesRequestSchema, { personalNumbers: m }));
    call.end();
    await done;
    client.close();
    expect(got.map((r) => Number(r.offset))).toEqual([0, 3, 4]);
    expect(got.map((r) => r.results.map((x) => x.code))).toEqual(messages.map((m) => m.map((n) => `for-${n}`)));
    expect(callsInFlight()).toBe(0);
  });
});
