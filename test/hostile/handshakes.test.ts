/**
 * Issue 20, findings 9 and 10 (two CNs), as an outsider and a holder of odd certificates would try it with raw
 * TLS sockets from their own 127.x addresses: every refused handshake is closed, counted by reason in
 * `linkgw_handshakes_refused_total{reason}` and logged with the peer address (a flood of them in a few lines),
 * and a certificate naming two agencies is refused instead of being taken as its first CN.
 */
import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { devCa, mint, ownCa, type Issuer } from '../helpers/certs.js';
import { startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
let ca: Issuer;
beforeAll(async () => {
  h = await startHarness({ env: { LINKGW_TLS_HANDSHAKE_TIMEOUT_MS: '400' } });
  ca = await devCa(h.dataDir);
});
afterAll(async () => {
  await h?.stop();
});

const port = () => Number(h.gw.address.slice(h.gw.address.lastIndexOf(':') + 1));
const caPem = () => readFileSync(pkiFiles(join(h.dataDir, 'pki')).caCert);

async function refused(reason: string): Promise<number> {
  const text = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_handshakes_refused_total');
  return Number(new RegExp(`reason="${reason}"} (\\d+)`).exec(text)?.[1] ?? 0);
}

/** A TLS connection from `localAddress` with the given client certificate; resolves when the server has closed it. */
function attempt(localAddress: string, id: { cert?: Buffer; key?: Buffer } = {}): Promise<{ handshook: boolean }> {
  return new Promise((resolve) => {
    let handshook = false;
    const raw = tcpConnect({ port: port(), host: '127.0.0.1', localAddress });
    raw.on('error', () => undefined);
    const s = tlsConnect({ socket: raw, servername: 'localhost', ca: caPem(), ALPNProtocols: ['h2'], ...(id.cert && id.key ? { cert: id.cert, key: id.key } : {}) });
    s.on('secureConnect', () => void (handshook = true));
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.on('close', () => resolve({ handshook }));
  });
}

/** Logged refusals of one reason from one peer address. */
function logged(reason: string, peer: string): number {
  return h
    .logs()
    .split('\n')
    .filter((l) => l.includes('refused at the TLS handshake') && l.includes(`"reason":"${reason}"`) && l.includes(`"peer":"${peer}"`)).length;
}

describe('refused handshakes, by reason', () => {
  it('no certificate, unknown CA, expired, unknown agency, two CNs, timeout: each closed, counted and logged with the peer', async () => {
    const outsider = await ownCa();
    const cases: [string, string, () => Promise<{ cert?: Buffer; key?: Buffer }>][] = [
      ['no_certificate', '127.0.20.1', async () => ({})],
      ['unknown_ca', '127.0.20.2', () => mint(outsider, 'CN=pension, O=linkgw agency')],
      ['expired', '127.0.20.3', () => mint(ca, 'CN=pension, O=linkgw agency', { notBefore: new Date(Date.now() - 40 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })],
      ['unknown_agency', '127.0.20.4', () => mint(ca, 'CN=intruder, O=linkgw agency')],
      ['ambiguous_identity', '127.0.20.5', () => mint(ca, 'CN=welfare, CN=disclosure, O=linkgw agency')],
    ];
    for (const [reason, peer, make] of cases) {
      const before = await refused(reason);
      await attempt(peer, await make());
      await until(async () => (await refused(reason)) === before + 1);
      await until(() => logged(reason, peer) === 1);
    }
    // A socket that never starts TLS: closed at the handshake timeout, counted and logged.
    const before = await refused('timeout');
    await new Promise<void>((resolve) => {
      const s = tcpConnect({ port: port(), host: '127.0.0.1', localAddress: '127.0.20.6' });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    await until(async () => (await refused('timeout')) >= before + 1);
    await until(() => logged('timeout', '127.0.20.6') === 1);
    // The agencies are served all along.
    await expect(h.client('tax').issueCode(population(1, 2001)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('a certificate with two CNs is refused to grpc-js clients too, never served as its first CN', async () => {
    const two = await mint(ca, 'CN=welfare, CN=disclosure, O=linkgw agency');
    const f = join(h.dataDir, 'two-cn');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(f, { recursive: true });
    writeFileSync(join(f, 'c.crt'), two.cert);
    writeFileSync(join(f, 'c.key'), two.key);
    const c = new AgencyClient({ address: h.gw.address, agency: 'welfare', files: { ca: pkiFiles(join(h.dataDir, 'pki')).caCert, cert: join(f, 'c.crt'), key: join(f, 'c.key') } });
    try {
      const before = await refused('ambiguous_identity');
      const s = await statusOf(c.issueCode(population(1, 2002)[0]!));
      expect(s.code).toBe(status.UNAVAILABLE);
      expect(await refused('ambiguous_identity')).toBeGreaterThan(before);
    } finally {
      c.close();
    }
  });

  it('logs a flood of refused handshakes in a few lines, and counts every one', async () => {
    const before = await refused('no_certificate');
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => attempt(`127.0.21.${i + 1}`)));
    await until(async () => (await refused('no_certificate')) === before + n);
    const lines = h.logs().split('\n').filter((l) => l.includes('refused at the TLS handshake') && l.includes('"reason":"no_certificate"') && l.includes('"peer":"127.0.21.'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(10); // 5 per reason per 10 s window
  });
});
