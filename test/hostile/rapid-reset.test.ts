/**
 * Issue 20, finding 5 (the transport half): HTTP/2 Rapid Reset, HEADERS, DATA and RST_STREAM at once, on one
 * connection and on connection after connection, as the attacker did with raw node:http2. Reset streams are
 * budgeted per connection and per agency; a connection that spends its budget, or any connection of an agency
 * that has spent its own, is closed with GOAWAY ENHANCE_YOUR_CALM. An agency that cancels a few calls, or a
 * small share of many, keeps its connection, and other agencies are served meanwhile. (Whether a cancelled call is computed or recorded is the
 * call pipeline's business, tested with it.)
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { constants, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueCodeRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { grpcFrame, grpcRequest, grpcStatus, rawSession } from '../helpers/raw-h2.js';
import { until } from '../helpers/wait.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { LINKGW_STREAM_RESETS_PER_CONNECTION: '50', LINKGW_STREAM_RESETS_PER_AGENCY: '150' } });
});
afterAll(async () => {
  await h?.stop();
});

const refusals = async (reason: string) => {
  const text = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_refusals_total');
  return Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? 0);
};

const frame = grpcFrame(toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: population(1, 6000)[0]! })));

/** Sends HEADERS, DATA and RST_STREAM for `n` streams, in rounds of 20, while the session is open. Returns how many were sent. */
async function rapidReset(s: ClientHttp2Session, n: number): Promise<number> {
  let sent = 0;
  const gone = new Promise((r) => s.once('close', r));
  while (sent < n && !s.closed && !s.destroyed) {
    const round = [];
    for (let i = 0; i < 20 && sent < n && !s.closed && !s.destroyed; i++, sent++) {
      const req = grpcRequest(s, '/linkage.v1.LinkageGateway/IssueCode');
      req.write(frame);
      req.close(constants.NGHTTP2_CANCEL);
      round.push(new Promise((r) => req.once('close', r)));
    }
    await Promise.race([Promise.all(round), gone]);
    // A round trip between rounds (the attacker reads too): the gateway's GOAWAY is seen here.
    if (!s.closed && !s.destroyed)
      await Promise.race([
        new Promise((r) => {
          try {
            s.ping(() => r(undefined));
          } catch {
            r(undefined);
          }
        }),
        gone,
      ]);
  }
  return sent;
}

/** Resolves with the GOAWAY error code when the server closes the session (or -1 when it just closed). */
function goaway(s: ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => {
    s.once('goaway', (code) => resolve(code));
    s.once('close', () => resolve(-1));
  });
}

describe('reset streams', () => {
  it('close the connection that resets over its budget', async () => {
    const before = await refusals('stream_resets');
    const s = await rawSession(h.gw.address, h.dataDir, 'pension');
    const closed = goaway(s);
    const sent = await rapidReset(s, 2000);
    expect(await closed).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(sent).toBeLessThan(2000);
    expect(await refusals('stream_resets')).toBeGreaterThan(before);
    s.destroy();
  });

  it("close every connection of an agency past the agency's budget, however many it opens; others are served", async () => {
    // welfare resets 30 streams per connection (under the connection budget) on connection after connection.
    let closedByServer = 0;
    let resetsSent = 0;
    for (let i = 0; i < 20; i++) {
      const s = await rawSession(h.gw.address, h.dataDir, 'welfare');
      const closed = goaway(s);
      resetsSent += await rapidReset(s, 30);
      // Wait for the last resets to be seen: a short call on the same connection, or its closing.
      if (!s.closed && !s.destroyed) {
        const probe = grpcRequest(s, '/grpc.health.v1.Health/Check');
        probe.end(grpcFrame(new Uint8Array(0)));
        await Promise.race([grpcStatus(probe), closed]);
      }
      if (s.destroyed || s.closed || (await Promise.race([closed, Promise.resolve(0)])) !== 0) closedByServer++;
      s.destroy();
    }
    // The agency's budget (150) is spent within the first six connections; from then on each is closed.
    expect(closedByServer).toBeGreaterThanOrEqual(10);
    console.log(`rapid reset on 20 connections: ${resetsSent} resets sent, ${closedByServer} connections closed by the gateway`);
    // tax is served meanwhile, and a few cancelled calls of its own do not cost it its connection.
    const tax = await rawSession(h.gw.address, h.dataDir, 'tax');
    const taxClosed = goaway(tax);
    await rapidReset(tax, 20);
    const ok = grpcRequest(tax, '/linkage.v1.LinkageGateway/IssueCode');
    ok.end(grpcFrame(toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: population(1, 6001)[0]! }))));
    expect((await grpcStatus(ok)).code).toBe(0);
    expect(await Promise.race([taxClosed, new Promise((r) => setTimeout(() => r('open'), 200))])).toBe('open');
    tax.destroy();
    await until(() => h.logs().includes('streams reset over budget'));
  });

  it('leave alone a connection whose resets are a small share of its calls, even past the burst', async () => {
    // employment cancels 10 calls after every 20 answered ones: 80 resets on one connection, over its budget of
    // 50, but every answered call earns one back (as Envoy judges resets by their share of the streams).
    const s = await rawSession(h.gw.address, h.dataDir, 'employment');
    const closed = goaway(s);
    let resets = 0;
    for (let round = 0; round < 8; round++) {
      for (let i = 0; i < 20; i++) {
        const ok = grpcRequest(s, '/grpc.health.v1.Health/Check');
        ok.end(grpcFrame(new Uint8Array(0)));
        expect((await grpcStatus(ok)).code).toBe(0);
      }
      resets += await rapidReset(s, 10);
    }
    expect(resets).toBe(80);
    expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('open'), 200))])).toBe('open');
    s.destroy();
  });
});
