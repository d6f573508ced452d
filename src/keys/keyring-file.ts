/**
 * The keyring file: versioned master secrets for agency codes, the subject secret for record indexing, the
 * cache secret for the Redis tier, and the Ed25519 key pairs that seal access records. It lives in the data
 * directory with mode 0600, is created on first start, and is never in git.
 *
 * This is the only module that reads or writes key bytes to disk. A production deployment replaces the file
 * with a mounted secret (same format) or an HSM-backed implementation of `Keyring`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MasterKeys } from '../core/agency-code.js';
import { KeyObjectSigner, type Signer } from './signer.js';

interface KeyringFileV1 {
  format: 'linkgw-keyring-v1';
  current: number;
  masters: Record<string, string>;
  subject: string;
  cache: string;
  sealing: { current: string; keys: Record<string, { privateKey: string; publicKey: string; createdAt: string }> };
  createdAt: string;
}

export interface Keyring extends MasterKeys {
  readonly subjectSecret: Uint8Array;
  readonly cacheSecret: Uint8Array;
  /** Signs record seals with the current sealing key. */
  readonly sealSigner: Signer;
  readonly sealPublicKeys: ReadonlyMap<string, KeyObject>;
}

function newSealKey(): { privateKey: string; publicKey: string; createdAt: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    createdAt: new Date().toISOString(),
  };
}

function fresh(): KeyringFileV1 {
  return {
    format: 'linkgw-keyring-v1',
    current: 1,
    masters: { '1': randomBytes(32).toString('base64') },
    subject: randomBytes(32).toString('base64'),
    cache: randomBytes(32).toString('base64'),
    sealing: { current: 'seal-1', keys: { 'seal-1': newSealKey() } },
    createdAt: new Date().toISOString(),
  };
}

function writeAtomic(path: string, doc: KeyringFileV1): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function read(path: string): KeyringFileV1 {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as KeyringFileV1;
  if (doc.format !== 'linkgw-keyring-v1') throw new Error(`${path}: not a linkgw keyring (format ${String(doc.format)})`);
  return doc;
}

function toKeyring(doc: KeyringFileV1): Keyring {
  const masters = new Map<number, Uint8Array>();
  for (const [v, k] of Object.entries(doc.masters)) masters.set(Number(v), Buffer.from(k, 'base64'));
  const sealPublicKeys = new Map<string, KeyObject>();
  for (const [id, k] of Object.entries(doc.sealing.keys)) sealPublicKeys.set(id, createPublicKey(k.publicKey));
  const current = doc.sealing.keys[doc.sealing.current];
  if (!current) throw new Error('keyring: the current sealing key is missing');
  return {
    current: doc.current,
    masters,
    subjectSecret: Buffer.from(doc.subject, 'base64'),
    cacheSecret: Buffer.from(doc.cache, 'base64'),
    sealSigner: new KeyObjectSigner(doc.sealing.current, createPrivateKey(current.privateKey), createPublicKey(current.publicKey)),
    sealPublicKeys,
  };
}

/** Loads the keyring, creating it on first start. `created` says whether it was new. */
export function loadOrCreateKeyring(path: string): { keyring: Keyring; created: boolean } {
  if (existsSync(path)) return { keyring: toKeyring(read(path)), created: false };
  writeAtomic(path, fresh());
  return { keyring: toKeyring(read(path)), created: true };
}

export function loadKeyring(path: string): Keyring {
  return toKeyring(read(path));
}

/** Adds a new master version and makes it current; old versions stay so old codes keep decoding. */
export function rotateMasterKey(path: string): number {
  const doc = read(path);
  const next = Math.max(...Object.keys(doc.masters).map(Number)) + 1;
  if (next > 255) throw new Error('keyring: 255 master versions used; retire old ones first');
  doc.masters[String(next)] = randomBytes(32).toString('base64');
  doc.current = next;
  writeAtomic(path, doc);
  return next;
}

/** Adds a new sealing key pair and makes it current; old public keys stay for verification. */
export function rotateSealKey(path: string): string {
  const doc = read(path);
  const next = `seal-${Object.keys(doc.sealing.keys).length + 1}`;
  doc.sealing.keys[next] = newSealKey();
  doc.sealing.current = next;
  writeAtomic(path, doc);
  return next;
}

/** What `linkgw keys show` prints: versions and public keys, never a secret. */
export function describeKeyring(path: string): Record<string, unknown> {
  const doc = read(path);
  return {
    format: doc.format,
    createdAt: doc.createdAt,
    codeKeyVersions: Object.keys(doc.masters).map(Number),
    currentCodeKeyVersion: doc.current,
    sealingKeys: Object.fromEntries(Object.entries(doc.sealing.keys).map(([id, k]) => [id, { createdAt: k.createdAt, publicKey: k.publicKey }])),
    currentSealingKey: doc.sealing.current,
  };
}
