/**
 * Issue 8, findings 4 and 6, below the handlers, tried with raw sockets and raw HTTP/2 as an attacker would:
 * sockets that never start TLS are closed; connections per peer are capped; the stream limit is advertised in
 * SETTINGS; header-only streams end; each method has a receive limit that refuses before decoding; corrupt
 * compressed messages and bad grpc-timeout headers are INVALID_ARGUMENT, not INTERNAL.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import { connect as tcpConnect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueCodeRequestSchema, IssueCodesRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { grpcFrame, grpcRequest, grpcStatus, rawSession } from '../helpers/raw-h2.js';
import { until } from '../helpers/wait.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: { LINKGW_TLS_HANDSHAKE_TIMEOUT_MS: '500', LINKGW_MAX_CONNECTIONS_PER_PEER: '6', LINKGW_MAX_STREAMS_PER_CONNECTION: '20', LINKGW_STREAM_IDLE_TIMEOUT_MS: '2000' },
  });
});
afterAll(async () => {
  await h?.stop();
});

const port = () => Number(h.gw.address.slice(h.gw.address.lastIndexOf(':') + 1));
const refusals = async (reason: string) => {
  const text = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_refusals_total');
  return Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? 0);
};

function rawTcp(): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = tcpConnect(port(), '127.0.0.1', () => resolve({ socket, closed }));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
  });
}

describe('connections', () => {
  it('closes sockets that never start TLS, and caps the connections of one peer', async () => {
    const before = await refusals('handshake_timeout');
    const socks = await Promise.all(Array.from({ length: 4 }, rawTcp));
    // Each is closed by the handshake timeout, not held for Node's default two minutes.
    const lived = await Promise.all(socks.map((s) => s.closed));
    for (const ms of lived) expect(ms).toBeLessThan(30_000);
    await until(async () => (await refusals('handshake_timeout')) >= before + 4);
    // Over the per-peer cap, a connection is closed at once, and the agencies' own connections still work.
    const many = await Promise.all(Array.from({ length: 9 }, rawTcp));
    await until(async () => (await refusals('connections')) >= 3);
    for (const s of many) s.socket.destroy();
    await expect(h.client('tax').issueCode(population(1, 61)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
  });
});

describe('streams', () => {
  it('advertises its concurrent-stream limit in SETTINGS', async () => {
    const s = await rawSession(h.gw.address, h.dataDir, 'pension');
    try {
      expect(s.remoteSettings.maxConcurrentStreams).toBe(20);
    } finally {
      s.destroy();
    }
  });

  it('ends a call that sends headers and no message', async () => {
    const s = await rawSession(h.gw.address, h.dataDir, 'pension');
    try {
      const req = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode');
      const st = await grpcStatus(req);
      expect(st.code).toBe(status.DEADLINE_EXCEEDED);
      expect(st.message).toMatch(/idle stream/);
    } finally {
      s.destroy();
    }
  });
});

describe('messages', () => {
  it('refuses a message larger than its method takes before decoding it', async () => {
    const s = await rawSession(h.gw.address, h.dataDir, 'pension');
    try {
      const before = await refusals('message_too_large');
      // 20 kB for IssueCode (a 12-digit number is what it takes).
      const big = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode');
      big.end(grpcFrame(toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: 'x'.repeat(20_000) }))));
      expect((await grpcStatus(big)).code).toBe(status.RESOURCE_EXHAUSTED);
      // 10,000 numbers fit IssueCodes; 10,000 strings of 30 characters do not.
      const bulk = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCodes');
      const fits = grpcFrame(toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: population(10_000, 62) })));
      const over = grpcFrame(toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: Array.from({ length: 10_000 }, () => '9'.repeat(30)) })));
      let answers = 0;
      bulk.on('data', () => void answers++);
      bulk.write(fits);
      await until(() => answers > 0, 30_000);
      bulk.end(over);
      expect((await grpcStatus(bulk)).code).toBe(status.RESOURCE_EXHAUSTED);
      expect(await refusals('message_too_large')).toBeGreaterThanOrEqual(before + 2);
    } finally {
      s.destroy();
    }
  });

  it('answers a corrupt compressed message and a malformed grpc-timeout with INVALID_ARGUMENT', async () => {
    const s = await rawSession(h.gw.address, h.dataDir, 'pension');
    try {
      const body = toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: population(1, 63)[0]! }));
      const cases: [Record<string, string>, Buffer][] = [
        [{ 'grpc-encoding': 'gzip' }, grpcFrame(Buffer.from('definitely not gzip'), true)],
        [{ 'grpc-encoding': 'gzip' }, grpcFrame(gzipSync(Buffer.alloc(1000)).subarray(0, 15), true)],
        [{ 'grpc-timeout': 'abc' }, grpcFrame(body)],
        [{ 'grpc-timeout': '1x' }, grpcFrame(body)],
      ];
      for (const [headers, frame] of cases) {
        const req = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', headers);
        req.end(frame);
        const st = await grpcStatus(req);
        expect(st.code, JSON.stringify(headers)).toBe(status.INVALID_ARGUMENT);
        expect(st.message).not.toMatch(/abc|1x/);
      }
      // A valid compressed request still works.
      const ok = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode', { 'grpc-encoding': 'gzip' });
      ok.end(grpcFrame(gzipSync(body), true));
      expect((await grpcStatus(ok)).code).toBe(status.OK);
    } finally {
      s.destroy();
    }
  });
});
