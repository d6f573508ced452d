/**
 * Issue 20, finding 8: a compromised agency certificate is shut out by a CRL made with the CA's key and put in
 * LINKGW_CLIENT_CRL, as an operator would (replaced under a running gateway the way a ConfigMap update does,
 * by an atomic symlink swap): refused at its next handshake, connections already open untouched, other
 * agencies unaffected; a CRL past its next update is reported (metric and log) and, by default, still
 * enforced; a CRL no CA of the bundle signed is not taken.
 */
import { status } from '@grpc/grpc-js';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { ensureDevPki, pkiFiles } from '../../src/pki/dev-pki.js';
import { crl, devCa, ownCa, serialOf, type Issuer } from '../helpers/certs.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const DAY = 86_400_000;
const dataDir = tempDir('linkgw-crl-');
// Mounted as Kubernetes mounts a ConfigMap: agencies.crl -> ..data/agencies.crl, ..data -> ..vN, and an update
// swaps ..data atomically (a new directory, a new symlink renamed over the old one).
const crlDir = join(dataDir, 'crl-mount');
const crlFile = join(crlDir, 'agencies.crl');
let version = 0;
function mount(pem: string): void {
  const v = `..v${++version}`;
  mkdirSync(join(crlDir, v), { recursive: true });
  writeFileSync(join(crlDir, v, 'agencies.crl'), pem);
  symlinkSync(v, join(crlDir, '..data_tmp'));
  renameSync(join(crlDir, '..data_tmp'), join(crlDir, '..data'));
  if (version === 1) symlinkSync(join('..data', 'agencies.crl'), crlFile);
}
let h: Harness;
let ca: Issuer;
let pensionSerial: string;

beforeAll(async () => {
  // The PKI first (the CRL is the CA's), then the gateway with LINKGW_CLIENT_CRL.
  const registry = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; certificate: { commonName: string } }[] };
  await ensureDevPki(join(dataDir, 'pki'), new Map(registry.agencies.map((a) => [a.id, a.certificate.commonName])), undefined, { caKeyDir: `${dataDir}-dev-ca` });
  ca = await devCa(dataDir);
  pensionSerial = serialOf(readFileSync(pkiFiles(join(dataDir, 'pki')).agencyCert('pension')));
  mount(await crl(ca, []));
  h = await startHarness({ dataDir, env: { LINKGW_CLIENT_CRL: crlFile } });
});
afterAll(async () => {
  await h?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}-dev-ca`, { recursive: true, force: true });
});

async function metric(name: string, label = ''): Promise<number> {
  const text = await h.gw.metrics.registry.getSingleMetricAsString(name);
  return Number(new RegExp(`${name}${label.replace(/[{}]/g, '\\$&')} ([0-9.e+-]+)`).exec(text)?.[1] ?? NaN);
}

/** Publishes a CRL and waits until the gateway has it in force (its nextUpdate, unique per CRL, is reported). */
async function publish(pem: Promise<string>, nextUpdate: Date): Promise<void> {
  mount(await pem);
  await until(async () => (await metric('linkgw_client_crl_next_update_seconds')) === nextUpdate.getTime() / 1000, 15_000);
}

const issue = (agency: string, seed: number) => h.client(agency).issueCode(population(1, seed)[0]!);

describe('LINKGW_CLIENT_CRL', () => {
  it('refuses a revoked certificate at its next handshake, leaves open connections and other agencies alone', async () => {
    const open = h.client('pension');
    await open.issueCode(population(1, 4000)[0]!);
    const next = new Date(Math.floor(Date.now() / 1000) * 1000 + 7 * DAY + 1000);
    const before = await metric('linkgw_handshakes_refused_total', '{reason="revoked"}');
    await publish(crl(ca, [pensionSerial], { nextUpdate: next }), next);
    // The connection open before the CRL changed is not dropped (connections end at their maximum age).
    await expect(open.issueCode(population(1, 4001)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
    // A new connection with the revoked certificate is refused at the handshake, counted and logged.
    expect((await statusOf(issue('pension', 4002))).code).toBe(status.UNAVAILABLE);
    expect(await metric('linkgw_handshakes_refused_total', '{reason="revoked"}')).toBeGreaterThan(before);
    await until(() => h.logs().includes('"reason":"revoked"'));
    // Other agencies connect as before.
    await expect(issue('tax', 4003)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('reports a CRL past its next update, and by default keeps enforcing it without refusing anyone for its age', async () => {
    const next = new Date(Math.floor(Date.now() / 1000) * 1000 - DAY);
    await publish(crl(ca, [pensionSerial], { thisUpdate: new Date(Date.now() - 8 * DAY), nextUpdate: next }), next);
    expect(await metric('linkgw_client_crl_stale')).toBe(1);
    await until(() => h.logs().includes('past its next update'));
    await expect(issue('welfare', 4010)).resolves.toBeDefined();
    expect((await statusOf(issue('pension', 4011))).code).toBe(status.UNAVAILABLE);
  });

  it('does not take a CRL that no CA of the bundle signed, nor one that does not parse: the one in force stays', async () => {
    const inForce = await metric('linkgw_client_crl_next_update_seconds');
    for (const pem of [crl(await ownCa('CN=linkgw development CA, O=linkgw development'), []), Promise.resolve('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')]) {
      const failures = await metric('linkgw_client_crl_reload_failures_total');
      mount(await pem);
      await until(async () => (await metric('linkgw_client_crl_reload_failures_total')) === failures + 1, 15_000);
    }
    expect(await metric('linkgw_client_crl_next_update_seconds')).toBe(inForce);
    expect((await statusOf(issue('pension', 4020))).code).toBe(status.UNAVAILABLE);
    expect(h.logs()).toContain('client CRL reload failed');
  });
});
