/**
 * The development CA's private key is never in the data directory: the first start still creates the whole
 * dev PKI, with the CA key in its own directory; later starts never read it; a certificate for an agency that
 * joins later is issued with it from outside the gateway; a key left in the data directory by an earlier
 * version is moved out at start.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { devCaKeyFile, issueAgencyCertificate, pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { filesUnder } from '../helpers/keyrings.js';

describe('the development PKI', () => {
  it('keeps the CA key out of the data directory and issues a certificate for a new agency later', async () => {
    const dataDir = tempDir();
    const caDir = `${dataDir}-dev-ca`;
    const first = await startHarness({ dataDir });
    expect((await first.client('pension').issueCode('621498320257')).code).toHaveLength(28);
    await first.stop();

    const caKey = readFileSync(devCaKeyFile(caDir), 'utf8');
    expect(caKey).toContain('PRIVATE KEY');
    expect(statSync(devCaKeyFile(caDir)).mode & 0o777).toBe(0o600);
    // The private scalar: PKCS#8 bytes 36..68 of a P-256 key (before it the algorithm header every key shares,
    // after it the public point, which ca.crt holds too).
    const d = Buffer.from(caKey.replace(/-----[^-]+-----|\s+/g, ''), 'base64').subarray(36, 68);
    for (const { path, bytes } of filesUnder(dataDir)) {
      expect(path.endsWith('ca.key'), path).toBe(false);
      expect(bytes.includes(d), `${path} holds the CA key`).toBe(false);
      expect(bytes.toString('latin1').replace(/\s+/g, ''), `${path} holds the CA key`).not.toContain(d.toString('base64').slice(0, 40));
    }

    // An agency joins the registry: the gateway starts without a certificate for it and says so.
    const registry = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: unknown[] };
    registry.agencies.push({ id: 'audit', name: 'Audit office (test)', roles: ['requester'], certificate: { commonName: 'audit' } });
    const agencies = join(tempDir(), 'agencies.json');
    writeFileSync(agencies, JSON.stringify(registry));
    const second = await startHarness({ dataDir, env: { LINKGW_AGENCIES: agencies } });
    try {
      expect(second.logs()).toMatch(/agencies without a development certificate.*audit/);
      const f = pkiFiles(join(dataDir, 'pki'));
      expect(existsSync(f.agencyCert('audit'))).toBe(false);
      // The operator issues it with the CA key, outside the gateway.
      await issueAgencyCertificate(join(dataDir, 'pki'), caDir, 'audit', 'audit');
      const cert = new X509Certificate(readFileSync(f.agencyCert('audit')));
      expect(cert.subject).toMatch(/CN=audit/);
      expect(cert.verify(new X509Certificate(readFileSync(f.caCert)).publicKey)).toBe(true);
      expect((await second.client('audit').issueCode('621498320257')).code).toHaveLength(28);
    } finally {
      await second.stop();
    }
  });

  it('moves a CA key that an earlier version left in the data directory', async () => {
    const dataDir = tempDir();
    const caDir = `${dataDir}-dev-ca`;
    await (await startHarness({ dataDir })).stop();
    // The layout of earlier versions: <data>/pki/ca.key.
    renameSync(devCaKeyFile(caDir), join(dataDir, 'pki', 'ca.key'));
    const h = await startHarness({ dataDir });
    try {
      expect(h.logs()).toMatch(/moved the development CA key out of the data directory/);
      expect(existsSync(join(dataDir, 'pki', 'ca.key'))).toBe(false);
      expect(existsSync(devCaKeyFile(caDir))).toBe(true);
    } finally {
      await h.stop();
    }
  });

  it('issues nothing without the CA key, and says where it looked', async () => {
    const dataDir = tempDir();
    await (await startHarness({ dataDir })).stop();
    await expect(issueAgencyCertificate(join(dataDir, 'pki'), join(tempDir(), 'elsewhere'), 'audit', 'audit')).rejects.toThrow(/CA key is not in .*elsewhere/);
  });
});
