/**
 * The keyring document: what `keyring.json` holds, whichever backend protects it. Every secret in it is a
 * string produced by the backend's `SecretProtection` (plain base64, AES-GCM under a passphrase-derived key,
 * or AES key wrap under a key that stays inside a PKCS#11 token), so the document's shape and its key states
 * are the same for every backend and the lifecycle code (`key-states.ts`) never sees a key.
 *
 * Format v2 adds key states and the protection header. A v1 file (the plain keyring of earlier versions) is
 * read as a plain v2 document; whatever writes the file writes v2. A gateway older than v2 refuses a v2 file
 * at start ("not a linkgw keyring"), so it can never mistake wrapped bytes for keys.
 */
import { createPrivateKey } from 'node:crypto';

export const KEYRING_FORMAT = 'linkgw-keyring-v2';

/**
 * The life of a key version (the same for code keys and sealing keys):
 *
 * - `staged`: known to every replica that has it, but not used to make anything. A staged code key decodes
 *   codes and issues none; a staged sealing key's public key is known to verifiers, and it seals nothing.
 * - `current`: the one key that issues codes / seals records. Exactly one of each kind.
 * - `previous`: was current; still decodes codes issued under it (a sealing key: still verifies).
 * - `retired`: withdrawn. A retired code key's secret is erased: codes issued under it no longer decode.
 *   A retired sealing key's private key is destroyed; its public key stays so that the seals it made can
 *   still be checked (see docs/keys.md for what that proves after a compromise).
 */
export type KeyState = 'staged' | 'current' | 'previous' | 'retired';

export interface CodeKeyEntry {
  state: KeyState;
  createdAt: string;
  /** The protected 32-byte master secret; erased when the key is retired. */
  secret?: string;
  retiredAt?: string;
}

export interface SealKeyEntry {
  state: KeyState;
  createdAt: string;
  /** SPKI PEM: what verifiers are given. */
  publicKey: string;
  /** The protected PKCS#8 DER private key, for keys held in the file. Absent for a token key, and once retired. */
  privateKey?: string;
  /** CKA_ID (hex) of the private key inside the PKCS#11 token, for token keys. */
  tokenKeyId?: string;
  retiredAt?: string;
}

export type Protection =
  | { kind: 'plain' }
  | { kind: 'passphrase'; kdf: 'scrypt'; salt: string; N: number; r: number; p: number; cipher: 'aes-256-gcm' }
  | { kind: 'pkcs11'; token: string; wrappingKeyId: string; mechanism: 'CKM_AES_KEY_WRAP' };

export interface KeyringDocument {
  format: typeof KEYRING_FORMAT;
  createdAt: string;
  protection: Protection;
  /** Code key (master secret) versions 1..255, by version. */
  codeKeys: Record<string, CodeKeyEntry>;
  /** The protected subject secret (record index) and cache secret (Redis tier, idempotency keys). */
  subject: string;
  cache: string;
  sealingKeys: Record<string, SealKeyEntry>;
}

interface KeyringFileV1 {
  format: 'linkgw-keyring-v1';
  current: number;
  masters: Record<string, string>;
  subject: string;
  cache: string;
  sealing: { current: string; keys: Record<string, { privateKey: string; publicKey: string; createdAt: string }> };
  createdAt: string;
}

const STATES: readonly KeyState[] = ['staged', 'current', 'previous', 'retired'];

/** Parses and checks a keyring file's text; `where` names the file in errors. */
export function parseKeyringDocument(text: string, where: string): KeyringDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where}: not JSON, so not a linkgw keyring`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  const doc = format === 'linkgw-keyring-v1' ? fromV1(raw as KeyringFileV1) : format === KEYRING_FORMAT ? (raw as KeyringDocument) : undefined;
  if (!doc) throw new Error(`${where}: not a linkgw keyring this version reads (format ${String(format)})`);
  checkDocument(doc, where);
  return doc;
}

export function serializeKeyringDocument(doc: KeyringDocument): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

function fromV1(v1: KeyringFileV1): KeyringDocument {
  const codeKeys: Record<string, CodeKeyEntry> = {};
  for (const [v, secret] of Object.entries(v1.masters))
    codeKeys[v] = { state: Number(v) === v1.current ? 'current' : 'previous', createdAt: v1.createdAt, secret };
  const sealingKeys: Record<string, SealKeyEntry> = {};
  for (const [id, k] of Object.entries(v1.sealing.keys)) {
    const der = createPrivateKey(k.privateKey).export({ type: 'pkcs8', format: 'der' });
    sealingKeys[id] = { state: id === v1.sealing.current ? 'current' : 'previous', createdAt: k.createdAt, publicKey: k.publicKey, privateKey: der.toString('base64') };
  }
  return { format: KEYRING_FORMAT, createdAt: v1.createdAt, protection: { kind: 'plain' }, codeKeys, subject: v1.subject, cache: v1.cache, sealingKeys };
}

/** The invariants every reader relies on; a file that breaks one is refused rather than half used. */
export function checkDocument(doc: KeyringDocument, where = 'keyring'): void {
  const bad = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (!doc.protection || !['plain', 'passphrase', 'pkcs11'].includes(doc.protection.kind)) bad('unknown protection');
  if (typeof doc.subject !== 'string' || typeof doc.cache !== 'string') bad('the subject or cache secret is missing');
  const codes = Object.entries(doc.codeKeys ?? {});
  for (const [v, k] of codes) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 255 || String(n) !== v) bad(`code key version "${v}" is not 1..255`);
    if (!STATES.includes(k.state)) bad(`code key ${v} has an unknown state`);
    if ((k.state === 'retired') !== (k.secret === undefined)) bad(`code key ${v}: a retired key has no secret, every other key has one`);
  }
  if (codes.filter(([, k]) => k.state === 'current').length !== 1) bad('exactly one code key must be current');
  const seals = Object.entries(doc.sealingKeys ?? {});
  for (const [id, k] of seals) {
    if (!STATES.includes(k.state)) bad(`sealing key ${id} has an unknown state`);
    if (typeof k.publicKey !== 'string') bad(`sealing key ${id} has no public key`);
    const held = k.privateKey !== undefined || k.tokenKeyId !== undefined;
    if (k.state !== 'retired' && !held) bad(`sealing key ${id} has no private key`);
    if (k.state === 'retired' && k.privateKey !== undefined) bad(`sealing key ${id} is retired but its private key is still in the file`);
  }
  if (seals.filter(([, k]) => k.state === 'current').length !== 1) bad('exactly one sealing key must be current');
}

/** Code key versions that decode (every state but retired), ascending. */
export function liveCodeVersions(doc: KeyringDocument): number[] {
  return Object.entries(doc.codeKeys)
    .filter(([, k]) => k.state !== 'retired')
    .map(([v]) => Number(v))
    .sort((a, b) => a - b);
}

export function currentCodeVersion(doc: KeyringDocument): number {
  return Number(Object.entries(doc.codeKeys).find(([, k]) => k.state === 'current')![0]);
}

export function currentSealKeyId(doc: KeyringDocument): string {
  return Object.entries(doc.sealingKeys).find(([, k]) => k.state === 'current')![0];
}

export interface KeyringDescription {
  format: string;
  createdAt: string;
  /** Which backend protects the secrets, and where (token label); never a secret or a passphrase parameter that helps guessing. */
  protection: { kind: Protection['kind']; token?: string };
  /** Versions that decode (staged, current, previous). */
  codeKeyVersions: number[];
  currentCodeKeyVersion: number;
  codeKeys: Record<string, { state: KeyState; createdAt: string; retiredAt?: string }>;
  currentSealingKey: string;
  sealingKeys: Record<string, { state: KeyState; createdAt: string; publicKey: string; heldIn: 'file' | 'token' | 'destroyed'; retiredAt?: string }>;
}

/** What `linkgw keys show` prints: states, dates and public keys, never a secret. */
export function describeDocument(doc: KeyringDocument): KeyringDescription {
  return {
    format: doc.format,
    createdAt: doc.createdAt,
    protection: doc.protection.kind === 'pkcs11' ? { kind: 'pkcs11', token: doc.protection.token } : { kind: doc.protection.kind },
    codeKeyVersions: liveCodeVersions(doc),
    currentCodeKeyVersion: currentCodeVersion(doc),
    codeKeys: Object.fromEntries(
      Object.entries(doc.codeKeys).map(([v, k]) => [v, { state: k.state, createdAt: k.createdAt, ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}) }]),
    ),
    currentSealingKey: currentSealKeyId(doc),
    sealingKeys: Object.fromEntries(
      Object.entries(doc.sealingKeys).map(([id, k]) => [
        id,
        {
          state: k.state,
          createdAt: k.createdAt,
          publicKey: k.publicKey,
          heldIn: k.state === 'retired' ? 'destroyed' : k.tokenKeyId !== undefined ? 'token' : 'file',
          ...(k.retiredAt ? { retiredAt: k.retiredAt } : {}),
        },
      ]),
    ),
  };
}
