/**
 * Issue 20, finding 1: new agency connections must not be locked out, tried as the attacker would:
 *
 *  - an outsider with no certificate holds partial TLS handshakes from hundreds of 127.x addresses and reopens
 *    each one within 50 ms of it being closed (a connect storm once handshakes are evicted);
 *  - one agency opens connections with its valid certificate until it is refused; several agencies do.
 *
 * A registered agency's new connection must get through meanwhile. Bounded for CI (400 sockets, budgets scaled
 * down by settings); `LINKGW_TEST_LONG=1` runs the issue's sizes (2,200 addresses, the default budgets).
 */
import { connect as h2connect } from 'node:http2';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { ConnectionBudget } from '../../src/grpc/connection-budget.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const LONG = process.env.LINKGW_TEST_LONG === '1';
const FLOOD = LONG ? 2200 : 400;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: LONG
      ? {}
      : { LINKGW_MAX_HANDSHAKES: '32', LINKGW_MAX_CONNECTIONS: '64', LINKGW_MAX_CONNECTIONS_PER_AGENCY: '16', LINKGW_CONNECTION_SHARE: '4', LINKGW_CONNECTION_RESERVE: '16' },
  });
});
afterAll(async () => {
  await h?.stop();
});

const portOf = (x: Harness) => Number(x.gw.address.slice(x.gw.address.lastIndexOf(':') + 1));
const port = () => portOf(h);

async function refused(reason: string, x: Harness = h): Promise<number> {
  const text = await x.gw.metrics.registry.getSingleMetricAsString('linkgw_handshakes_refused_total');
  return Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? 0);
}

/** An HTTP/2 connection with an agency's certificate: whether the server took it (its SETTINGS arrived). */
function agencyConnection(agency: string, x: Harness = h): Promise<{ ok: boolean; close: () => void }> {
  const f = pkiFiles(join(x.dataDir, 'pki'));
  const s = h2connect(`https://localhost:${portOf(x)}`, { ca: readFileSync(f.caCert), cert: readFileSync(f.agencyCert(agency)), key: readFileSync(f.agencyKey(agency)) });
  s.on('error', () => undefined);
  return new Promise((resolve) => {
    s.once('remoteSettings', () => resolve({ ok: true, close: () => s.destroy() }));
    s.once('close', () => resolve({ ok: false, close: () => undefined }));
  });
}

/** The first bytes of a TLS ClientHello record that announces 512 bytes: a handshake that stalls after starting. */
const PARTIAL_HELLO = Buffer.from('160301020001000', 'hex');

/** Holds a partial handshake from `localAddress`, reopening it within 50 ms of each close, until `stop()`. */
function staller(localAddress: string, partial: boolean): { stop: () => void } {
  let stopped = false;
  let socket: Socket | undefined;
  const open = () => {
    if (stopped) return;
    socket = tcpConnect({ port: port(), host: '127.0.0.1', localAddress }, () => {
      if (partial) socket?.write(PARTIAL_HELLO);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => void setTimeout(open, 10 + Math.random() * 40));
  };
  open();
  return {
    stop: () => {
      stopped = true;
      socket?.destroy();
    },
  };
}

describe('a flood of partial handshakes from many addresses', () => {
  it('does not keep a registered agency from connecting, nor disturb connections already open', async () => {
    const open = h.client('tax');
    await open.issueCode(population(1, 3000)[0]!);
    const evictedBefore = await refused('evicted');
    const flood = Array.from({ length: FLOOD }, (_, i) => staller(`127.${1 + Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1}`, i % 2 === 0));
    try {
      // The flood is at the handshake budget: handshakes are being closed to make room.
      await until(async () => (await refused('evicted')) >= evictedBefore + FLOOD, 30_000);
      // New connections of an agency, one after the other, each a new TLS handshake, all get through.
      const results: string[] = [];
      for (let i = 0; i < 10; i++) {
        const c = new AgencyClient({ address: h.gw.address, agency: 'pension', pkiDir: join(h.dataDir, 'pki') });
        try {
          results.push(await c.issueCode(population(1, 3001 + i)[0]!).then(() => 'ok', (e: { code?: number }) => `failed ${e.code}`));
        } finally {
          c.close();
        }
      }
      console.log(`handshake flood from ${FLOOD} addresses: ${(await refused('evicted')) - evictedBefore} handshakes evicted; agency connections ${results.join(', ')}`);
      expect(results).toEqual(Array(10).fill('ok'));
      // The connection open before the flood is served all along.
      await expect(open.issueCode(population(1, 3020)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
    } finally {
      for (const f of flood) f.stop();
    }
    await until(async () => Number(/linkgw_handshakes_in_progress (\d+)/.exec(await h.gw.metrics.registry.getSingleMetricAsString('linkgw_handshakes_in_progress'))?.[1]) === 0, 15_000);
  }, 90_000);
});

describe('agencies holding many connections', () => {
  it('caps one agency, keeps room for agencies within their share, and lets another agency connect', async () => {
    const g = await startHarness({ env: { LINKGW_MAX_CONNECTIONS: '64', LINKGW_MAX_CONNECTIONS_PER_AGENCY: '16', LINKGW_CONNECTION_SHARE: '4', LINKGW_CONNECTION_RESERVE: '16' } });
    const held: { close: () => void }[] = [];
    try {
      // pension tries 40 connections: 16 (its cap) are taken, the rest refused after the handshake.
      const before = await refused('agency_connections', g);
      const pension = await Promise.all(Array.from({ length: 40 }, () => agencyConnection('pension', g)));
      held.push(...pension);
      expect(pension.filter((c) => c.ok).length).toBe(16);
      expect(await refused('agency_connections', g)).toBe(before + 24);
      // tax and employment take theirs too: 48 of 64 are held, 16 left = the reserve.
      for (const a of ['tax', 'employment']) {
        const cs = await Promise.all(Array.from({ length: 16 }, () => agencyConnection(a, g)));
        held.push(...cs);
        expect(cs.filter((c) => c.ok).length, a).toBe(16);
      }
      // welfare, within its share (4), still connects; past its share the reserve is kept for others.
      const welfare = [];
      for (let i = 0; i < 6; i++) welfare.push(await agencyConnection('welfare', g));
      held.push(...welfare);
      expect(welfare.map((c) => c.ok)).toEqual([true, true, true, true, false, false]);
      // disclosure, with no connection, gets in through the reserve.
      const c = await agencyConnection('disclosure', g);
      held.push(c);
      expect(c.ok).toBe(true);
      // Closed connections give their budget back.
      for (const p of pension) p.close();
      await until(async () => {
        const c = await agencyConnection('pension', g);
        c.close();
        return c.ok;
      });
    } finally {
      for (const c of held) c.close();
      await g.stop();
    }
  }, 60_000);
});

describe('the connection budget', () => {
  it('refuses over the per-agency cap, and past an agency\'s share only while the reserve is all that is left', () => {
    const b = new ConnectionBudget({ total: 10, perAgency: 6, share: 2, reserve: 3 });
    for (let i = 0; i < 6; i++) expect(b.take('a')).toBe(true);
    expect(b.take('a')).toBe(false); // its cap
    expect(b.take('b')).toBe(true); // 7 held, 3 free = the reserve: b is within its share
    expect(b.take('b')).toBe(true);
    expect(b.take('b')).toBe(false); // b at its share, 2 free < reserve
    expect(b.take('c')).toBe(true);
    expect(b.take('d')).toBe(true);
    expect(b.take('e')).toBe(false); // the gateway's total
    b.release('a');
    expect(b.take('e')).toBe(true);
    expect(b.held()).toBe(10);
  });
});
