/**
 * Issue 20, finding 6: requests carrying ~34 KB of metadata each (a 6,000-character grpc-timeout,
 * x-request-id, traceparent, 100 custom entries), sent over raw HTTP/2 as the attacker did. The gateway
 * bounds a request's header block (LINKGW_MAX_METADATA_BYTES, LINKGW_MAX_METADATA_ENTRIES) in Node's HTTP/2
 * layer, before grpc-js builds any Metadata from it: such a stream is reset, no handler runs, and the
 * gateway's memory returns after a flood of them. The gateway runs as its own process so its RSS is its own.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { IssueCodeRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { grpcFrame, grpcRequest, grpcStatus, rawSession } from '../helpers/raw-h2.js';
import { killServed, serve } from '../helpers/serve-process.js';
import { until } from '../helpers/wait.js';

const LONG = process.env.LINKGW_TEST_LONG === '1';
const FLOOD = LONG ? 20_000 : 3_200;

let gw: Awaited<ReturnType<typeof serve>>;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir('linkgw-metadata-');
  gw = await serve({ LINKGW_DATA_DIR: dataDir });
});
afterAll(killServed);

function rssMiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The attacker's metadata: about 34 KB in 103 entries. */
function hugeMetadata(): Record<string, string> {
  const h: Record<string, string> = { 'grpc-timeout': `${'9'.repeat(6000)}S`, 'x-request-id': 'r'.repeat(6000), traceparent: `00-${'a'.repeat(6000)}` };
  for (let i = 0; i < 100; i++) h[`x-custom-${i}`] = 'v'.repeat(160);
  return h;
}

const body = () => grpcFrame(toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: population(1, 5000)[0]! })));

describe('request metadata', () => {
  it('advertises its header list bound, resets a stream over it (size or count) without running a handler, and serves normal metadata', async () => {
    const s = await rawSession(gw.address, dataDir, 'pension');
    try {
      expect(s.remoteSettings.maxHeaderListSize).toBe(8192);
      const big = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', { 'x-big': 'b'.repeat(9000) });
      big.end(body());
      const many = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-m-${i}`, 'v'])));
      many.end(body());
      for (const req of [big, many]) {
        const st = await grpcStatus(req);
        expect(st.code, st.message).toBe(-1); // reset: no status, no handler
        expect(req.rstCode).toBe(11); // ENHANCE_YOUR_CALM: grpc clients report RESOURCE_EXHAUSTED
      }
      const ok = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', { 'x-request-id': 'req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'grpc-timeout': '5S' });
      ok.end(body());
      expect((await grpcStatus(ok)).code).toBe(status.OK);
    } finally {
      s.destroy();
    }
  });

  it(`costs no lasting memory: ${FLOOD} requests with ~34 KB of metadata each, then RSS returns near idle`, async () => {
    const tax = new AgencyClient({ address: gw.address, agency: 'tax', pkiDir: `${dataDir}/pki` });
    const sessions: ClientHttp2Session[] = await Promise.all(Array.from({ length: 4 }, () => rawSession(gw.address, dataDir, 'pension')));
    try {
      for (let i = 0; i < 20; i++) await tax.issueCode(population(1, 5100 + i)[0]!);
      const idle = rssMiB();
      let peak = idle;
      let sent = 0;
      let reset = 0;
      const md = hugeMetadata();
      const frame = body();
      // In waves of 200 streams across 4 connections (the connection's stream limit is 256).
      while (sent < FLOOD) {
        const wave = Array.from({ length: 200 }, (_, i) => {
          const s = sessions[i % sessions.length]!;
          const req = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', md);
          req.end(frame);
          sent++;
          return grpcStatus(req).then((st) => void (st.code === -1 && reset++));
        });
        await Promise.all(wave);
        peak = Math.max(peak, rssMiB());
        for (let i = 0; i < sessions.length; i++) if (sessions[i]!.destroyed || sessions[i]!.closed) sessions[i] = await rawSession(gw.address, dataDir, 'pension');
      }
      expect(reset).toBe(sent);
      // Served meanwhile and after.
      await expect(tax.issueCode(population(1, 5200)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
      // RSS comes back: within 40 MiB of idle (GC and the allocator return what the flood took).
      let after = rssMiB();
      await until(() => (after = rssMiB()) - idle < 40, 20_000).catch(() => undefined);
      console.log(`metadata flood: ${sent} requests, idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, after ${after.toFixed(0)} MiB`);
      expect(peak - idle, `idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB`).toBeLessThan(80);
      expect(after - idle, `idle ${idle.toFixed(0)} MiB, after ${after.toFixed(0)} MiB`).toBeLessThan(40);
      expect(gw.child.exitCode).toBeNull();
    } finally {
      for (const s of sessions) s.destroy();
      tax.close();
    }
  }, 120_000);
});
