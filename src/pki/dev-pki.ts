/**
 * The development PKI, created on first start in `<data>/pki/` (never in git): a CA, a certificate for the
 * gateway (server, and client when it calls providers), and one certificate per agency of the registry whose
 * subject common name is what the registry maps to the agency. Agency certificates also carry serverAuth and
 * localhost names so the simulated agencies can serve their InformationProvider with them.
 *
 * The CA's private key is never written to the PKI directory (nor anywhere in the data directory): whoever
 * holds it can mint a certificate for any agency, and the gateway never needs it, since it only checks
 * certificates against `ca.crt`. It is kept in a directory of its own (`LINKGW_DEV_CA_DIR`, by default next to
 * the data directory) so that a certificate for a new agency can be issued later (`issueAgencyCertificate`);
 * a caller that gives no such directory gets the key discarded once the PKI is made.
 *
 * Keys are ECDSA P-256, certificates valid for a year. Production deployments bring their own PKI: the gateway
 * only needs `ca.crt`, `gateway.crt` and `gateway.key` (LINKGW_TLS_* settings); see docs/keys.md.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** The CA key's file in a CA key directory. */
export function devCaKeyFile(caKeyDir: string): string {
  return join(caKeyDir, 'ca.key');
}

async function loadCa(caCert: string, keyFile: string): Promise<Issuer> {
  const cert = new x509.X509Certificate(readFileSync(caCert, 'utf8'));
  const der = pemToDer(readFileSync(keyFile, 'utf8'));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  const publicKey = await cert.publicKey.export(ALG, ['verify']);
  return { cert, keys: { privateKey, publicKey } as CryptoKeyPair };
}

/**
 * Moves a CA key that an earlier version left in the PKI directory to `caKeyDir`. Returns whether it did.
 * (A rename where possible; across file systems a copy, then the original is removed.)
 */
export function moveLegacyCaKey(dir: string, caKeyDir: string): boolean {
  const legacy = join(dir, 'ca.key');
  if (!existsSync(legacy)) return false;
  const target = devCaKeyFile(caKeyDir);
  mkdirSync(caKeyDir, { recursive: true, mode: 0o700 });
  if (existsSync(target)) throw new Error(`a development CA key is both in ${legacy} and in ${target}; keep the one that signed ${join(dir, 'ca.crt')} and delete the other`);
  try {
    renameSync(legacy, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    copyFileSync(legacy, target);
    chmodSync(target, 0o600);
    unlinkSync(legacy);
  }
  return true;
}

/**
 * Creates the CA and the gateway's certificate if missing, and a certificate for each agency that has none.
 * Returns the agencies it issued for. The CA key is kept in `o.caKeyDir` when given, and discarded otherwise;
 * an existing PKI that needs a new certificate needs that key (or fails, naming what is missing).
 */
export async function ensureDevPki(
  dir: string,
  agencyCommonNames: ReadonlyMap<string, string>,
  caName = 'linkgw development CA',
  o: { readonly caKeyDir?: string } = {},
): Promise<string[]> {
  const f = pkiFiles(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (o.caKeyDir) moveLegacyCaKey(dir, o.caKeyDir);
  const todo = [...agencyCommonNames].filter(([id]) => !existsSync(f.agencyCert(id)) || !existsSync(f.agencyKey(id)));
  const gatewayMissing = !existsSync(f.gatewayCert) || !existsSync(f.gatewayKey);
  let ca: Issuer;
  if (!existsSync(f.caCert)) {
    ca = await createCa(caName);
    if (o.caKeyDir) {
      mkdirSync(o.caKeyDir, { recursive: true, mode: 0o700 });
      writeSecret(devCaKeyFile(o.caKeyDir), await pemKey(ca.keys.privateKey));
    }
    writeFileSync(f.caCert, ca.cert.toString('pem') + '\n');
  } else if (todo.length || gatewayMissing) {
    const keyFile = [o.caKeyDir && devCaKeyFile(o.caKeyDir), join(dir, 'ca.key')].find((k): k is string => !!k && existsSync(k));
    if (!keyFile)
      throw new Error(
        `cannot issue development certificates (${[...(gatewayMissing ? ['gateway'] : []), ...todo.map(([id]) => id)].join(', ')}): the key of ${f.caCert} is ${o.caKeyDir ? `not in ${o.caKeyDir}` : 'not kept'}`,
      );
    ca = await loadCa(f.caCert, keyFile);
  } else return [];
  if (gatewayMissing) {
    const g = await issue(ca, 'linkgw-gateway', 'linkgw gateway');
    writeFileSync(f.gatewayCert, g.cert);
    writeSecret(f.gatewayKey, g.key);
  }
  const issued: string[] = [];
  for (const [id, cn] of todo) {
    const a = await issue(ca, cn, 'linkgw agency');
    writeFileSync(f.agencyCert(id), a.cert);
    writeSecret(f.agencyKey(id), a.key);
    issued.push(id);
  }
  return issued;
}

export interface DevPkiBootstrap {
  /** The PKI was made now (first start): CA, gateway and every agency. */
  readonly created: boolean;
  readonly issued: readonly string[];
  /** Agencies of the registry that have no certificate yet (the gateway does not read the CA key to make one). */
  readonly missing: readonly string[];
  /** A CA key left in the PKI directory by an earlier version was moved to the CA key directory. */
  readonly movedCaKey: boolean;
}

/**
 * What the gateway does at start with the dev PKI: creates it all on first start (the CA key goes to
 * `caKeyDir`, outside the data directory), and afterwards never touches the CA key, only reporting agencies
 * that still need a certificate from `issueAgencyCertificate`.
 */
export async function bootstrapDevPki(dir: string, caKeyDir: string, agencyCommonNames: ReadonlyMap<string, string>): Promise<DevPkiBootstrap> {
  const f = pkiFiles(dir);
  if (!existsSync(f.caCert)) {
    const issued = await ensureDevPki(dir, agencyCommonNames, undefined, { caKeyDir });
    return { created: true, issued, missing: [], movedCaKey: false };
  }
  const movedCaKey = moveLegacyCaKey(dir, caKeyDir);
  const missing = [...agencyCommonNames.keys()].filter((id) => !existsSync(f.agencyCert(id)) || !existsSync(f.agencyKey(id)));
  return { created: false, issued: [], missing, movedCaKey };
}

/**
 * Issues (or re-issues) the development certificate of one agency with the CA key from `caKeyDir`: what an
 * operator runs when an agency joins the registry (proposed `linkgw pki issue AGENCY`). Returns the files.
 */
export async function issueAgencyCertificate(dir: string, caKeyDir: string, agency: string, commonName: string): Promise<{ cert: string; key: string }> {
  const f = pkiFiles(dir);
  const keyFile = devCaKeyFile(caKeyDir);
  if (!existsSync(f.caCert)) throw new Error(`no development CA in ${dir}: start the gateway once to create it`);
  if (!existsSync(keyFile)) throw new Error(`the development CA key is not in ${caKeyDir} (LINKGW_DEV_CA_DIR)`);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(agency)) throw new Error('an agency id is letters, digits, ".", "_" and "-"');
  const a = await issue(await loadCa(f.caCert, keyFile), commonName, 'linkgw agency');
  writeFileSync(f.agencyCert(agency), a.cert);
  writeSecret(f.agencyKey(agency), a.key);
  return { cert: f.agencyCert(agency), key: f.agencyKey(agency) };
}

function pemToDer(pem: string): ArrayBuffer {
  const b = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
