/**
 * Issue 15: the plaintext health port for the kubelet and grpc_health_probe. It answers without a client
 * certificate, serves nothing but Health, says NOT_SERVING while the gateway drains, and the agency port still
 * refuses a client without a certificate.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Serving } from '../../src/gen/grpc/health/v1/health_pb.js';
import { IssueCodesRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { itWithTool, tool } from '../helpers/deploy-tools.js';
import { population } from '../helpers/population.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';

const run = promisify(execFile);
const id = (b: Buffer) => b;

function check(address: string, service: string, path = '/grpc.health.v1.Health/Check'): Promise<{ code: number; status?: Serving }> {
  const c = new Client(address, credentials.createInsecure());
  return new Promise((resolve) => {
    c.makeUnaryRequest(path, id, id, Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service }))), new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, res?: Buffer) => {
      c.close();
      resolve(e ? { code: e.code } : { code: 0, status: fromBinary(HealthCheckResponseSchema, res!).status });
    });
  });
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { LINKGW_HEALTH_LISTEN: '127.0.0.1:0' } });
});
afterAll(async () => {
  await h?.stop();
});

describe('the health port', () => {
  it('answers grpc.health.v1 in plaintext, and nothing else', async () => {
    const addr = h.gw.healthAddress!;
    expect(await check(addr, '')).toEqual({ code: 0, status: Serving.SERVING });
    expect(await check(addr, 'linkage.v1.LinkageGateway')).toEqual({ code: 0, status: Serving.SERVING });
    expect((await check(addr, 'nope')).code).toBe(status.NOT_FOUND);
    // Only Health is served there.
    expect((await check(addr, '', '/linkage.v1.LinkageGateway/IssueCode')).code).toBe(status.UNIMPLEMENTED);
    // The agency port still wants a client certificate: plaintext does not even connect.
    expect((await check(h.gw.address, '')).code).toBe(status.UNAVAILABLE);
  });

  itWithTool('grpc-health-probe')('is what grpc_health_probe checks', async () => {
    const r = await run(tool('grpc-health-probe'), [`-addr=${h.gw.healthAddress!}`, '-connect-timeout=5s', '-rpc-timeout=5s']);
    expect(r.stdout + r.stderr).toMatch(/status: SERVING/);
  });
});

describe('while the gateway drains', () => {
  it('says NOT_SERVING', async () => {
    const g = await startHarness({ env: { LINKGW_HEALTH_LISTEN: '127.0.0.1:0' } });
    const addr = g.gw.healthAddress!;
    // Hold a call open so the drain lasts: an idle stream keeps the server from finishing its shutdown.
    const s = g.client('pension').issueStream(30_000);
    s.on('error', () => undefined);
    const answered = new Promise((r) => s.once('data', r));
    s.write(create(IssueCodesRequestSchema, { personalNumbers: population(1, 31) }));
    await answered;
    const stopping = g.gw.stop(3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(await check(addr, '')).toEqual({ code: 0, status: Serving.NOT_SERVING });
    s.cancel();
    await stopping;
    await g.stop();
  });
});
