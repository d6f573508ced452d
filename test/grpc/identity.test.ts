/**
 * Identity comes from the client certificate, parsed once per connection by the transport guard and mapped
 * through the registry on every call: pins are enforced, and a policy reload applies to connections already
 * open.
 */
import { status } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

const registryFile = join(tempDir('linkgw-identity-'), 'agencies.json');
const shipped = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; certificate: Record<string, unknown> }[] };
function writeRegistry(pensionPins: string[]): void {
  const doc = structuredClone(shipped);
  for (const a of doc.agencies) if (a.id === 'pension') a.certificate = { ...a.certificate, fingerprints: pensionPins };
  writeFileSync(registryFile, JSON.stringify(doc));
}

let h: Harness;
beforeAll(async () => {
  writeRegistry([Array.from({ length: 32 }, () => 'AB').join(':')]);
  h = await startHarness({ env: { LINKGW_AGENCIES: registryFile } });
});
afterAll(async () => {
  await h?.stop();
});

describe('identity', () => {
  it('refuses a certificate that is not the one pinned, and accepts it once the pin is right, on the same connection', async () => {
    const pension = h.client('pension');
    const s = await statusOf(pension.issueCode(population(1, 91)[0]!));
    expect(s.code).toBe(status.UNAUTHENTICATED);
    expect(s.details).toMatch(/not one pinned/);
    await expect(h.client('tax').issueCode(population(1, 92)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
    const real = new X509Certificate(readFileSync(join(h.dataDir, 'pki', 'pension.crt'))).fingerprint256;
    writeRegistry([real]);
    expect(h.gw.policy.reload()).toBe(true);
    await expect(pension.issueCode(population(1, 93)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
  });
});
