/**
 * The keyring file and the keyring a gateway runs with.
 *
 * `<data>/keyring.json` (mode 0600, never in git) holds the versioned code master secrets, the subject secret
 * for record indexing, the cache secret for the Redis tier, and the Ed25519 sealing keys, each with its state
 * (`keyring-document.ts`). How the secrets are protected is the backend's business (`key-backend.ts`): in the
 * plain file (the embedded default, created on first start), under a passphrase, or wrapped under a key
 * inside a PKCS#11 token with the sealing key in the token too. Only the plain file is ever created
 * implicitly; a wrapped or HSM keyring is made by an operator command (`keyring-admin.ts`).
 *
 * This module and the backends are the only code that turns key bytes into files or back.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MasterKeys } from '../core/agency-code.js';
import type { KeyringSettings } from '../config/settings.js';
import { fileSealSigner, openBackend, PLAIN_CIPHER, type KeyBackend } from './key-backend.js';
import { KeyringError } from './keyring-error.js';
import {
  currentCodeVersion,
  currentSealKeyId,
  describeDocument,
  KEYRING_FORMAT,
  parseKeyringDocument,
  serializeKeyringDocument,
  type KeyringDescription,
  type KeyringDocument,
  type Protection,
} from './keyring-document.js';
import type { Signer } from './signer.js';

export interface Keyring extends MasterKeys {
  /** `masters` holds every version that decodes (staged, current, previous); `current` is the one that issues. */
  readonly subjectSecret: Uint8Array;
  readonly cacheSecret: Uint8Array;
  /**
   * Signs with the current sealing key: record seals, and anything else the gateway signs (transparency-log
   * checkpoints). With the PKCS#11 backend the signature is made inside the token.
   */
  readonly sealSigner: Signer;
  /** Every sealing public key by id, retired ones included (their old seals still verify). */
  readonly sealPublicKeys: ReadonlyMap<string, KeyObject>;
  /** Which backend protects this keyring at rest. */
  readonly protection: Protection['kind'];
  /** Ends the token session of an HSM keyring (no-op otherwise). After it the signer no longer signs. */
  close(): Promise<void>;
}

/** Where a keyring is and how to unlock it. */
export interface KeyringLocation {
  readonly path: string;
  readonly unlock: KeyringSettings;
}

export const KEYRING_FILE = 'keyring.json';

export function keyringLocation(s: { readonly dataDir: string; readonly keyring: KeyringSettings }): KeyringLocation {
  return { path: join(s.dataDir, KEYRING_FILE), unlock: s.keyring };
}

export function readKeyringDocument(path: string): KeyringDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyringError('missing', `no keyring at ${path}`, { cause: e });
    throw e;
  }
  try {
    return parseKeyringDocument(text, path);
  } catch (e) {
    throw new KeyringError('format', (e as Error).message, { cause: e });
  }
}

/** Replaces the file atomically (write, fsync-free rename) with mode 0600 in a 0700 directory. */
export function writeKeyringDocument(path: string, doc: KeyringDocument): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, serializeKeyringDocument(doc), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** A new plain keyring: one code key, the subject and cache secrets, one sealing key. */
export function freshPlainDocument(now = new Date()): KeyringDocument {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const at = now.toISOString();
  return {
    format: KEYRING_FORMAT,
    createdAt: at,
    protection: { kind: 'plain' },
    codeKeys: { '1': { state: 'current', createdAt: at, secret: randomBytes(32).toString('base64') } },
    subject: randomBytes(32).toString('base64'),
    cache: randomBytes(32).toString('base64'),
    sealingKeys: {
      'seal-1': {
        state: 'current',
        createdAt: at,
        publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        privateKey: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      },
    },
  };
}

/** The secrets of a document, revealed: what a running gateway holds in memory. */
interface Revealed {
  readonly masters: Map<number, Uint8Array>;
  readonly subject: Buffer;
  readonly cache: Buffer;
}

function assemble(doc: KeyringDocument, secrets: Revealed, sealSigner: Signer, close: () => Promise<void>): Keyring {
  const sealPublicKeys = new Map<string, KeyObject>();
  for (const [id, k] of Object.entries(doc.sealingKeys)) sealPublicKeys.set(id, createPublicKey(k.publicKey));
  return {
    current: currentCodeVersion(doc),
    masters: secrets.masters,
    subjectSecret: secrets.subject,
    cacheSecret: secrets.cache,
    sealSigner,
    sealPublicKeys,
    protection: doc.protection.kind,
    close,
  };
}

async function reveal(doc: KeyringDocument, backend: KeyBackend): Promise<Revealed> {
  const masters = new Map<number, Uint8Array>();
  // The subject secret first: with a passphrase, a wrong one fails here, before anything else is tried.
  const subject = await backend.reveal('subject', doc.subject);
  for (const [v, k] of Object.entries(doc.codeKeys)) if (k.secret !== undefined) masters.set(Number(v), await backend.reveal(`code:${v}`, k.secret));
  const cache = await backend.reveal('cache', doc.cache);
  for (const [v, m] of masters) if (m.length !== 32) throw new KeyringError('format', `code key ${v} is ${m.length} bytes, not 32`);
  return { masters, subject, cache };
}

/** Opens a keyring on any backend. `createIfMissing` creates a plain one (only when the settings are for one). */
export async function openKeyring(loc: KeyringLocation, o: { createIfMissing?: boolean } = {}): Promise<{ keyring: Keyring; created: boolean }> {
  let created = false;
  if (!existsSync(loc.path)) {
    if (loc.unlock.backend !== 'plain')
      throw new KeyringError(
        'missing',
        `no keyring at ${loc.path}; a ${loc.unlock.backend} keyring is made by ${loc.unlock.backend === 'pkcs11' ? 'linkgw keys init-hsm' : 'linkgw keys wrap'}, never implicitly`,
      );
    if (!o.createIfMissing) throw new KeyringError('missing', `no keyring at ${loc.path}`);
    writeKeyringDocument(loc.path, freshPlainDocument());
    created = true;
  }
  const doc = readKeyringDocument(loc.path);
  const backend = await openBackend(doc.protection, loc.unlock, loc.path);
  try {
    const secrets = await reveal(doc, backend);
    const id = currentSealKeyId(doc);
    const signer = await backend.sealSigner(id, doc.sealingKeys[id]!);
    return { keyring: assemble(doc, secrets, signer, () => backend.close()), created };
  } catch (e) {
    await backend.close();
    throw e;
  }
}

function plainKeyring(path: string, doc: KeyringDocument): Keyring {
  if (doc.protection.kind !== 'plain')
    throw new KeyringError('settings', `${path} is a ${doc.protection.kind} keyring; open it with its settings (openKeyring), not as a plain file`);
  const masters = new Map<number, Uint8Array>();
  for (const [v, k] of Object.entries(doc.codeKeys)) if (k.secret !== undefined) masters.set(Number(v), PLAIN_CIPHER.open(`code:${v}`, k.secret));
  const id = currentSealKeyId(doc);
  const signer = fileSealSigner(id, doc.sealingKeys[id]!, PLAIN_CIPHER);
  return assemble(doc, { masters, subject: PLAIN_CIPHER.open('subject', doc.subject), cache: PLAIN_CIPHER.open('cache', doc.cache) }, signer, async () => {});
}

/** Loads a plain keyring, creating it on first start. `created` says whether it was new. (Tools and benchmarks.) */
export function loadOrCreateKeyring(path: string): { keyring: Keyring; created: boolean } {
  if (existsSync(path)) return { keyring: loadKeyring(path), created: false };
  writeKeyringDocument(path, freshPlainDocument());
  return { keyring: loadKeyring(path), created: true };
}

/** Loads a plain keyring (synchronously; other backends go through `openKeyring`). */
export function loadKeyring(path: string): Keyring {
  return plainKeyring(path, readKeyringDocument(path));
}

/** What `linkgw keys show` prints: states, dates and public keys, never a secret. Needs no PIN or passphrase. */
export function describeKeyring(path: string): KeyringDescription {
  return describeDocument(readKeyringDocument(path));
}

/** The sealing public keys, for `records verify`: needs no PIN or passphrase, since verifying needs no secret. */
export function readSealPublicKeys(path: string): Map<string, KeyObject> {
  const doc = readKeyringDocument(path);
  return new Map(Object.entries(doc.sealingKeys).map(([id, k]) => [id, createPublicKey(k.publicKey)]));
}
