/**
 * Issue 8, finding 4 (health): a Health.Check with a huge service name is refused at once, a malformed one is
 * INVALID_ARGUMENT, and Health.Watch streams count against the agency's streams like any other stream.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Client, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Serving } from '../../src/gen/grpc/health/v1/health_pb.js';
import { clientOptionsFor } from '../../src/grpc/channel-options.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';

let h: Harness;
let client: Client;
beforeAll(async () => {
  h = await startHarness({ env: { LINKGW_MAX_STREAMS_PER_AGENCY: '2' } });
  const f = pkiFiles(join(h.dataDir, 'pki'));
  client = new Client(h.gw.address, channelCredentials({ ca: f.caCert, cert: f.agencyCert('pension'), key: f.agencyKey('pension') }), clientOptionsFor(h.gw.address));
});
afterAll(async () => {
  client?.close();
  await h?.stop();
});

const id = (b: Buffer) => b;
const check = (body: Buffer) =>
  new Promise<{ code: number; res?: Buffer }>((resolve) =>
    client.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, body, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, res?: Buffer) =>
      resolve(e ? { code: e.code } : { code: 0, ...(res ? { res } : {}) }),
    ),
  );
const req = (service: string) => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })));

describe('Health', () => {
  it('answers known services, refuses unknown, huge and malformed ones with a clear status', async () => {
    const ok = await check(req('linkage.v1.LinkageGateway'));
    expect(fromBinary(HealthCheckResponseSchema, ok.res!).status).toBe(Serving.SERVING);
    expect((await check(req('no.such.Service'))).code).toBe(status.NOT_FOUND);
    // Over the 200-character bound, and far over the 1 KiB a Health request may be (refused before decoding).
    expect((await check(req('x'.repeat(300)))).code).toBe(status.INVALID_ARGUMENT);
    expect((await check(req('x'.repeat(1_000_000)))).code).toBe(status.RESOURCE_EXHAUSTED);
    expect((await check(Buffer.from([0x0a, 0xff, 0xff]))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('counts Watch streams against the agency\'s streams', async () => {
    const watches = [0, 1, 2].map(() => client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', id, id, req(''), new Metadata(), { deadline: Date.now() + 30_000 }));
    const outcomes = watches.map(
      (w) =>
        new Promise<number>((resolve) => {
          w.on('data', () => resolve(0));
          w.on('error', (e: ServiceError) => resolve(e.code));
        }),
    );
    const codes = await Promise.all(outcomes);
    expect(codes.sort()).toEqual([0, 0, status.RESOURCE_EXHAUSTED]);
    for (const w of watches) w.cancel();
    await until(() => h.gw.inFlight.total === 0);
  });
});
