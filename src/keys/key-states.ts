/**
 * The key lifecycle as transitions on a keyring document: rotate (new key, current at once), stage (new key,
 * accepted but unused), promote (the newest staged key becomes current, the current one previous) and retire
 * (withdraw a key). Pure: the backend makes the new protected secret or key pair and destroys what a retirement
 * leaves behind in a token; these functions only decide states, so every backend rotates the same way.
 *
 * Why two phases: replicas read the keyring at start, so during a rolling update some run the old keyring and
 * some the new. A code issued under a version that another replica does not know is refused there. Staging
 * first (and rolling it out) makes every replica accept the new version before any issues under it; promoting
 * (and rolling that out) then switches issuing while the replicas not yet restarted still accept both.
 */
import type { CodeKeyEntry, KeyringDocument, SealKeyEntry } from './keyring-document.js';
import { currentCodeVersion, currentSealKeyId } from './keyring-document.js';

export const MAX_CODE_KEY_VERSION = 255;

/** The next code key version. Versions are never reused, retired ones included: a code names its key by it. */
export function nextCodeVersion(doc: KeyringDocument): number {
  const next = Math.max(0, ...Object.keys(doc.codeKeys).map(Number)) + 1;
  if (next > MAX_CODE_KEY_VERSION) throw new Error(`keyring: all ${MAX_CODE_KEY_VERSION} code key versions are used (a code's version is one byte)`);
  return next;
}

/** Adds a code key under `nextCodeVersion`: `current` at once (rotate) or `staged`. */
export function addCodeKey(doc: KeyringDocument, secret: string, state: 'current' | 'staged', now = new Date()): number {
  const version = nextCodeVersion(doc);
  if (state === 'current') demoteCurrent(doc.codeKeys);
  doc.codeKeys[String(version)] = { state, createdAt: now.toISOString(), secret };
  return version;
}

/** The newest staged code key becomes current; the current one becomes previous and keeps decoding. */
export function promoteCodeKey(doc: KeyringDocument): { current: number; previous: number } {
  const staged = Object.entries(doc.codeKeys).filter(([, k]) => k.state === 'staged');
  if (staged.length === 0) throw new Error('keyring: no staged code key to promote (stage one first)');
  const previous = currentCodeVersion(doc);
  const [version] = staged.reduce((a, b) => (Number(b[0]) > Number(a[0]) ? b : a));
  demoteCurrent(doc.codeKeys);
  doc.codeKeys[version]!.state = 'current';
  return { current: Number(version), previous };
}

/**
 * Withdraws a code key: its secret is erased, so codes issued under it stop decoding (an agency that still
 * holds one gets INVALID_ARGUMENT and must re-issue). The current key cannot be retired: stage and promote a
 * successor first.
 */
export function retireCodeKey(doc: KeyringDocument, version: number, now = new Date()): void {
  const k = doc.codeKeys[String(version)];
  if (!k) throw new Error(`keyring: there is no code key version ${version}`);
  if (k.state === 'current') throw new Error(`keyring: code key ${version} is current; promote or rotate to a successor before retiring it`);
  if (k.state === 'retired') throw new Error(`keyring: code key ${version} is already retired`);
  k.state = 'retired';
  k.retiredAt = now.toISOString();
  delete k.secret;
}

/** The next sealing key id, `seal-N`. */
export function nextSealKeyId(doc: KeyringDocument): string {
  return `seal-${Math.max(0, ...Object.keys(doc.sealingKeys).map(sealNumber)) + 1}`;
}

function sealNumber(id: string): number {
  return Number(/^seal-(\d+)$/.exec(id)?.[1] ?? 0);
}

/** Adds a sealing key made by the backend: `current` at once (rotate-seal) or `staged`. */
export function addSealKey(
  doc: KeyringDocument,
  id: string,
  held: Pick<SealKeyEntry, 'publicKey' | 'privateKey' | 'tokenKeyId'>,
  state: 'current' | 'staged',
  now = new Date(),
): void {
  if (doc.sealingKeys[id]) throw new Error(`keyring: sealing key ${id} exists`);
  if (state === 'current') demoteCurrent(doc.sealingKeys);
  doc.sealingKeys[id] = { state, createdAt: now.toISOString(), ...held };
}

export function promoteSealKey(doc: KeyringDocument): { current: string; previous: string } {
  const staged = Object.entries(doc.sealingKeys).filter(([, k]) => k.state === 'staged');
  if (staged.length === 0) throw new Error('keyring: no staged sealing key to promote (stage one first)');
  const previous = currentSealKeyId(doc);
  const [id] = staged.reduce((a, b) => (sealNumber(b[0]) > sealNumber(a[0]) ? b : a));
  demoteCurrent(doc.sealingKeys);
  doc.sealingKeys[id]!.state = 'current';
  return { current: id, previous };
}

/**
 * Withdraws a sealing key: it will never sign again (its private key is dropped from the file; the caller
 * destroys a token key). The public key stays, so `records verify` still checks the seals it made. Returns
 * the entry as it was, for the backend.
 */
export function retireSealKey(doc: KeyringDocument, id: string, now = new Date()): SealKeyEntry {
  const k = doc.sealingKeys[id];
  if (!k) throw new Error(`keyring: there is no sealing key ${id}`);
  if (k.state === 'current') throw new Error(`keyring: sealing key ${id} is current; promote or rotate to a successor before retiring it`);
  if (k.state === 'retired') throw new Error(`keyring: sealing key ${id} is already retired`);
  const before = { ...k };
  k.state = 'retired';
  k.retiredAt = now.toISOString();
  delete k.privateKey;
  return before;
}

function demoteCurrent(entries: Record<string, CodeKeyEntry | SealKeyEntry>): void {
  for (const k of Object.values(entries)) if (k.state === 'current') k.state = 'previous';
}
