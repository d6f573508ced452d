/**
 * The development PKI, created on first start in `<data>/pki/` (never in git): a CA, a certificate for the
 * gateway (server, and client when it calls providers), and one certificate per agency of the registry whose
 * subject common name is what the registry maps to the agency. Agency certificates also carry serverAuth and
 * localhost names so the simulated agencies can serve their InformationProvider with them.
 *
 * Keys are ECDSA P-256, certificates valid for a year. Production deployments bring their own PKI: the gateway
 * only needs `ca.crt`, `gateway.crt` and `gateway.key` (LINKGW_TLS_* settings).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface PkiFiles {
  readonly dir: string;
  readonly caCert: string;
  readonly gatewayCert: string;
  readonly gatewayKey: string;
  agencyCert(id: string): string;
  agencyKey(id: string): string;
}

export function pkiFiles(dir: string): PkiFiles {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    gatewayCert: join(dir, 'gateway.crt'),
    gatewayKey: join(dir, 'gateway.key'),
    agencyCert: (id) => join(dir, `${id}.crt`),
    agencyKey: (id) => join(dir, `${id}.key`),
  };
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)));
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

interface Issuer {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

async function createCa(name: string): Promise<Issuer> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}, O=linkgw development`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

async function issue(ca: Issuer, commonName: string, org: string): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}, O=${org}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
        { type: 'ip', value: '::1' },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pemKey(keys.privateKey) };
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Creates the CA and the gateway's certificate if missing, and a certificate for each agency that has none.
 * Returns the agencies it issued for.
 */
export async function ensureDevPki(dir: string, agencyCommonNames: ReadonlyMap<string, string>, caName = 'linkgw development CA'): Promise<string[]> {
  const f = pkiFiles(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKeyPath = join(dir, 'ca.key');
  let ca: Issuer;
  if (existsSync(f.caCert) && existsSync(caKeyPath)) {
    const cert = new x509.X509Certificate(readFileSync(f.caCert, 'utf8'));
    const der = pemToDer(readFileSync(caKeyPath, 'utf8'));
    const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
    const publicKey = await cert.publicKey.export(ALG, ['verify']);
    ca = { cert, keys: { privateKey, publicKey } as CryptoKeyPair };
  } else {
    ca = await createCa(caName);
    writeFileSync(f.caCert, ca.cert.toString('pem') + '\n');
    writeSecret(caKeyPath, await pemKey(ca.keys.privateKey));
  }
  if (!existsSync(f.gatewayCert) || !existsSync(f.gatewayKey)) {
    const g = await issue(ca, 'linkgw-gateway', 'linkgw gateway');
    writeFileSync(f.gatewayCert, g.cert);
    writeSecret(f.gatewayKey, g.key);
  }
  const issued: string[] = [];
  for (const [id, cn] of agencyCommonNames) {
    if (existsSync(f.agencyCert(id)) && existsSync(f.agencyKey(id))) continue;
    const a = await issue(ca, cn, 'linkgw agency');
    writeFileSync(f.agencyCert(id), a.cert);
    writeSecret(f.agencyKey(id), a.key);
    issued.push(id);
  }
  return issued;
}

function pemToDer(pem: string): ArrayBuffer {
  const b = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
