/**
 * What an operator does to a keyring, on every backend: rotate, stage, promote and retire code keys and
 * sealing keys; wrap a plain keyring under a passphrase; move a keyring into a PKCS#11 token (`initHsm`).
 * The command line calls these (`linkgw keys …`); running gateways read the file only at start, so each change
 * takes effect on a replica when it restarts (see docs/keys.md for the rolling-update runbook).
 *
 * Every change first proves that the keyring unlocks with the given settings (a wrong passphrase or PIN
 * changes nothing), then rewrites the file atomically.
 */
import { existsSync } from 'node:fs';
import type { KeyringSettings, SecretSource } from '../config/settings.js';
import { createBackend, openBackend, type KeyBackend } from './key-backend.js';
import { KeyringError } from './keyring-error.js';
import { checkDocument, describeDocument, KEYRING_FORMAT, type KeyringDescription, type KeyringDocument, type SealKeyEntry } from './keyring-document.js';
import { readKeyringDocument, writeKeyringDocument, type KeyringLocation } from './keyring-file.js';
import * as states from './key-states.js';

type Pkcs11Settings = Extract<KeyringSettings, { backend: 'pkcs11' }>;

async function change<T>(loc: KeyringLocation, fn: (doc: KeyringDocument, backend: KeyBackend) => Promise<T>): Promise<T> {
  const doc = readKeyringDocument(loc.path);
  const backend = await openBackend(doc.protection, loc.unlock, loc.path);
  try {
    (await backend.reveal('subject', doc.subject)).fill(0);
    const result = await fn(doc, backend);
    checkDocument(doc, loc.path);
    writeKeyringDocument(loc.path, doc);
    return result;
  } finally {
    await backend.close();
  }
}

/** A new code key version, current at once: single-gateway rotation (`linkgw keys rotate`). Old codes keep decoding. */
export function rotateCodeKey(loc: KeyringLocation): Promise<number> {
  return change(loc, async (doc, b) => states.addCodeKey(doc, await b.newSecret(`code:${states.nextCodeVersion(doc)}`), 'current'));
}

/** A new code key version that decodes but issues nothing yet (`linkgw keys stage`). */
export function stageCodeKey(loc: KeyringLocation): Promise<number> {
  return change(loc, async (doc, b) => states.addCodeKey(doc, await b.newSecret(`code:${states.nextCodeVersion(doc)}`), 'staged'));
}

/** The newest staged code key issues from now on; the one before keeps decoding (`linkgw keys promote`). */
export function promoteCodeKey(loc: KeyringLocation): Promise<{ current: number; previous: number }> {
  return change(loc, async (doc) => states.promoteCodeKey(doc));
}

/** Withdraws a code key version: its secret is erased and its codes stop decoding (`linkgw keys retire VERSION`). */
export function retireCodeKey(loc: KeyringLocation, version: number): Promise<void> {
  return change(loc, async (doc) => states.retireCodeKey(doc, version));
}

/** A new sealing key, current at once (`linkgw keys rotate-seal`). Old public keys stay for verification. */
export function rotateSealKey(loc: KeyringLocation): Promise<string> {
  return change(loc, async (doc, b) => {
    const id = states.nextSealKeyId(doc);
    states.addSealKey(doc, id, await b.newSealKey(id), 'current');
    return id;
  });
}

/** A new sealing key whose public key verifiers get now, signing nothing yet (`linkgw keys stage --seal`). */
export function stageSealKey(loc: KeyringLocation): Promise<{ id: string; publicKey: string }> {
  return change(loc, async (doc, b) => {
    const id = states.nextSealKeyId(doc);
    const held = await b.newSealKey(id);
    states.addSealKey(doc, id, held, 'staged');
    return { id, publicKey: held.publicKey };
  });
}

/** The newest staged sealing key signs from now on (`linkgw keys promote --seal`). */
export function promoteSealKey(loc: KeyringLocation): Promise<{ current: string; previous: string }> {
  return change(loc, async (doc) => states.promoteSealKey(doc));
}

/**
 * Withdraws a sealing key (`linkgw keys retire --seal ID`): the file stops holding its private key, and a
 * token key is destroyed in the token. The file is written first, so a failure to destroy leaves a key that
 * nothing uses, never a keyring that names a key it cannot find; running the command again destroys it.
 */
export async function retireSealKey(loc: KeyringLocation, id: string): Promise<void> {
  let before: SealKeyEntry | undefined;
  const doc = readKeyringDocument(loc.path);
  if (doc.sealingKeys[id]?.state === 'retired' && doc.sealingKeys[id]?.tokenKeyId) before = doc.sealingKeys[id];
  else before = await change(loc, async (d) => states.retireSealKey(d, id));
  if (!before.tokenKeyId) return;
  const backend = await openBackend(doc.protection, loc.unlock, loc.path);
  try {
    await backend.destroySealKey(id, before);
  } finally {
    await backend.close();
  }
}

/** `linkgw keys show`: each version's state, dates and public keys. Never a secret; needs no PIN or passphrase. */
export function showKeyring(path: string): KeyringDescription {
  return describeDocument(readKeyringDocument(path));
}

/** A whole new keyring under `backend`: one code key, subject and cache secrets, one sealing key. */
async function freshDocument(backend: KeyBackend, now = new Date()): Promise<KeyringDocument> {
  const at = now.toISOString();
  const seal = await backend.newSealKey('seal-1');
  return {
    format: KEYRING_FORMAT,
    createdAt: at,
    protection: backend.protection,
    codeKeys: { '1': { state: 'current', createdAt: at, secret: await backend.newSecret('code:1') } },
    subject: await backend.newSecret('subject'),
    cache: await backend.newSecret('cache'),
    sealingKeys: { 'seal-1': { state: 'current', createdAt: at, ...seal } },
  };
}

/** Every secret of `doc` moved from one backend's protection to another's; sealing keys are the caller's. */
async function reprotectSecrets(doc: KeyringDocument, from: KeyBackend, to: KeyBackend): Promise<KeyringDocument> {
  const move = async (slot: string, stored: string) => {
    const s = await from.reveal(slot, stored);
    try {
      return await to.protect(slot, s);
    } finally {
      s.fill(0);
    }
  };
  const codeKeys: KeyringDocument['codeKeys'] = {};
  for (const [v, k] of Object.entries(doc.codeKeys)) codeKeys[v] = k.secret === undefined ? { ...k } : { ...k, secret: await move(`code:${v}`, k.secret) };
  return { ...doc, protection: to.protection, codeKeys, subject: await move('subject', doc.subject), cache: await move('cache', doc.cache), sealingKeys: {} };
}

export interface ProtectResult {
  /** True when there was no keyring and a new one was made under the new protection. */
  readonly created: boolean;
  readonly description: KeyringDescription;
}

/**
 * `linkgw keys wrap`: puts the keyring under a passphrase (or changes the passphrase: `from` is then the old
 * one). Codes, subject keys and seals stay the same: only the protection changes. With no keyring yet, makes a
 * new one under the passphrase.
 */
export async function wrapWithPassphrase(path: string, passphrase: SecretSource, from: KeyringSettings = { backend: 'plain' }): Promise<ProtectResult> {
  const to = await createBackend({ backend: 'passphrase', passphrase });
  try {
    if (!existsSync(path)) {
      const doc = await freshDocument(to);
      writeKeyringDocument(path, doc);
      return { created: true, description: describeDocument(doc) };
    }
    const old = readKeyringDocument(path);
    if (old.protection.kind === 'pkcs11')
      throw new KeyringError('settings', `${path} is an HSM keyring: its sealing key cannot leave the token, so it is not moved back under a passphrase`);
    const fromBackend = await openBackend(old.protection, from, path);
    try {
      const doc = await reprotectSecrets(old, fromBackend, to);
      for (const [id, k] of Object.entries(old.sealingKeys)) {
        const entry = { ...k };
        if (k.privateKey !== undefined) {
          const der = await fromBackend.reveal(`seal:${id}`, k.privateKey);
          entry.privateKey = await to.protect(`seal:${id}`, der);
          der.fill(0);
        }
        doc.sealingKeys[id] = entry;
      }
      checkDocument(doc, path);
      writeKeyringDocument(path, doc);
      return { created: false, description: describeDocument(doc) };
    } finally {
      await fromBackend.close();
    }
  } finally {
    await to.close();
  }
}

/**
 * `linkgw keys init-hsm`: creates a wrapping key and a sealing key inside the token, wraps every secret of the
 * existing keyring under the wrapping key (so codes and subject keys are unchanged) and rewrites the file. The
 * file's sealing keys are retired: their private keys are dropped from the file, their public keys kept so
 * the seals they made still verify, and the token key seals from then on. `from` unlocks the keyring as it is
 * now (plain by default, or its passphrase). With no keyring yet, makes a new one in the token.
 */
export async function initHsm(path: string, hsm: Pkcs11Settings, from: KeyringSettings = { backend: 'plain' }): Promise<ProtectResult> {
  const old = existsSync(path) ? readKeyringDocument(path) : undefined;
  if (old?.protection.kind === 'pkcs11') throw new KeyringError('settings', `${path} is already an HSM keyring (token "${old.protection.token}")`);
  // Unlock the old keyring before creating anything in the token: a wrong passphrase leaves the token untouched.
  const fromBackend = old ? await openBackend(old.protection, from, path) : undefined;
  try {
    if (old && fromBackend) (await fromBackend.reveal('subject', old.subject)).fill(0);
    const to = await createBackend(hsm);
    try {
      if (!old || !fromBackend) {
        const doc = await freshDocument(to);
        writeKeyringDocument(path, doc);
        return { created: true, description: describeDocument(doc) };
      }
      const doc = await reprotectSecrets(old, fromBackend, to);
      const now = new Date().toISOString();
      for (const [id, k] of Object.entries(old.sealingKeys)) {
        const { privateKey: _dropped, ...kept } = k;
        doc.sealingKeys[id] = k.state === 'retired' ? kept : { ...kept, state: 'retired', retiredAt: now };
      }
      const id = states.nextSealKeyId(doc);
      doc.sealingKeys[id] = { state: 'current', createdAt: now, ...(await to.newSealKey(id)) };
      checkDocument(doc, path);
      writeKeyringDocument(path, doc);
      return { created: false, description: describeDocument(doc) };
    } finally {
      await to.close();
    }
  } finally {
    await fromBackend?.close();
  }
}
