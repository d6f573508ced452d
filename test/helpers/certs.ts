/**
 * Certificates and CRLs as an attacker (or a CA operator) would make them, for handshake tests: minted with the
 * dev CA's key (kept in `<data>-dev-ca/`), or with a CA of their own.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { devCaKeyFile, pkiFiles } from '../../src/pki/dev-pki.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
type Keys = webcrypto.CryptoKeyPair;

export interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly keys: Keys;
}

export interface Minted {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Hex serial. */
  readonly serial: string;
}

function pemKey(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const b = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)));
  b[0] = (b[0]! & 0x7f) | 0x10;
  return b.toString('hex');
}

/** The dev CA of a harness's data directory, with its key. */
export async function devCa(dataDir: string): Promise<Issuer> {
  const cert = new x509.X509Certificate(readFileSync(pkiFiles(join(dataDir, 'pki')).caCert, 'utf8'));
  const pem = readFileSync(devCaKeyFile(`${dataDir}-dev-ca`), 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  const publicKey = await cert.publicKey.export(ALG, ['verify']);
  return { cert, keys: { privateKey, publicKey } as Keys };
}

/** A CA of one's own (not in the gateway's bundle). */
export async function ownCa(name = 'CN=not the agencies CA'): Promise<Issuer> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as Keys;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, keys };
}

/** A client certificate from `ca` with any subject ("CN=welfare, CN=disclosure, O=x") and validity. */
export async function mint(ca: Issuer, subject: string, o: { notBefore?: Date; notAfter?: Date } = {}): Promise<Minted> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as Keys;
  const sn = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: sn,
    subject,
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return { cert: Buffer.from(cert.toString('pem') + '\n'), key: Buffer.from(pemKey(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))), serial: sn };
}

/** A PEM CRL signed by `ca` revoking `serials` (hex). */
export async function crl(ca: Issuer, serials: readonly string[], o: { thisUpdate?: Date; nextUpdate?: Date } = {}): Promise<string> {
  const c = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: o.thisUpdate ?? new Date(Date.now() - 60_000),
    nextUpdate: o.nextUpdate ?? new Date(Date.now() + 7 * DAY),
    signingAlgorithm: ALG,
    signingKey: ca.keys.privateKey,
    entries: serials.map((s) => ({ serialNumber: s, revocationDate: new Date(Date.now() - 1000) })),
  });
  // As OpenSSL writes it (RFC 7468's label).
  return c.toString('pem').replace(/(BEGIN|END) CRL/g, '$1 X509 CRL') + '\n';
}

/** The hex serial of a PEM certificate file. */
export function serialOf(pem: Buffer | string): string {
  return new x509.X509Certificate(String(pem)).serialNumber;
}
