/**
 * The key-wrapping seam: how a keyring's secrets are kept at rest, and where its sealing keys live. Three
 * backends implement it:
 *
 * - plain: secrets as base64 in the file, sealing keys as PKCS#8 in the file (the embedded default; the file's
 *   mode 0600 is its only protection).
 * - passphrase: the same file, every secret and private key sealed with AES-256-GCM under a key derived from a
 *   passphrase with scrypt (`passphrase-cipher.ts`), so the file alone is useless.
 * - pkcs11: secrets wrapped (AES key wrap) under an AES key that never leaves a PKCS#11 token, unwrapped into
 *   memory at start; sealing keys generated inside the token, used there through `Pkcs11Signer`, never
 *   exported (`pkcs11-backend.ts`).
 *
 * The keyring document and the key lifecycle are the same for all three; only these operations differ.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KeyringSettings, SecretSource } from '../config/settings.js';
import { KeyringError } from './keyring-error.js';
import type { Protection, SealKeyEntry } from './keyring-document.js';
import { PassphraseCipher } from './passphrase-cipher.js';
import { KeyObjectSigner, type Signer } from './signer.js';

/** What a backend made for a new sealing key: its public key and where the private key is held. */
export type HeldSealKey = Pick<SealKeyEntry, 'publicKey' | 'privateKey' | 'tokenKeyId'>;

export interface KeyBackend {
  /** The header that goes into the keyring document. */
  readonly protection: Protection;
  /** Protects a secret for the document. `slot` names what the secret is (`code:2`, `subject`, `seal:seal-1`). */
  protect(slot: string, secret: Uint8Array): Promise<string>;
  /** The secret back, in memory. */
  reveal(slot: string, stored: string): Promise<Buffer>;
  /** A fresh random 32-byte secret, already protected (a token makes it inside, from its own generator). */
  newSecret(slot: string): Promise<string>;
  /** A fresh Ed25519 sealing key pair. */
  newSealKey(id: string): Promise<HeldSealKey>;
  /** A Signer for a sealing key that is not retired. */
  sealSigner(id: string, entry: SealKeyEntry): Promise<Signer>;
  /** Destroys a withdrawn key's private half where the document does not hold it (inside a token). */
  destroySealKey(id: string, entry: SealKeyEntry): Promise<void>;
  close(): Promise<void>;
}

/** How the in-file backends turn a secret into document text and back. */
export interface SecretCipher {
  seal(slot: string, secret: Uint8Array): string;
  open(slot: string, stored: string): Buffer;
}

export const PLAIN_CIPHER: SecretCipher = {
  seal: (_slot, secret) => Buffer.from(secret).toString('base64'),
  open: (_slot, stored) => Buffer.from(stored, 'base64'),
};

/** Plain and passphrase keyrings: everything in the file, under `cipher`. */
export class InFileBackend implements KeyBackend {
  constructor(
    readonly protection: Protection,
    private readonly cipher: SecretCipher,
  ) {}

  async protect(slot: string, secret: Uint8Array): Promise<string> {
    return this.cipher.seal(slot, secret);
  }

  async reveal(slot: string, stored: string): Promise<Buffer> {
    return this.cipher.open(slot, stored);
  }

  async newSecret(slot: string): Promise<string> {
    const s = randomBytes(32);
    try {
      return this.cipher.seal(slot, s);
    } finally {
      s.fill(0);
    }
  }

  async newSealKey(id: string): Promise<HeldSealKey> {
    return newFileSealKey(id, this.cipher);
  }

  async sealSigner(id: string, entry: SealKeyEntry): Promise<Signer> {
    return fileSealSigner(id, entry, this.cipher);
  }

  async destroySealKey(): Promise<void> {
    // The private key was in the document; retiring it removed it there.
  }

  async close(): Promise<void> {}
}

export function newFileSealKey(id: string, cipher: SecretCipher): HeldSealKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: cipher.seal(`seal:${id}`, privateKey.export({ type: 'pkcs8', format: 'der' })),
  };
}

export function fileSealSigner(id: string, entry: SealKeyEntry, cipher: SecretCipher): Signer {
  if (entry.privateKey === undefined) throw new KeyringError('format', `sealing key ${id} has no private key in the keyring file`);
  const der = cipher.open(`seal:${id}`, entry.privateKey);
  try {
    return new KeyObjectSigner(id, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), createPublicKey(entry.publicKey));
  } finally {
    der.fill(0);
  }
}

/** A secret from its file (one trailing newline dropped, as editors and `echo` add one) or its value. */
export function readSecretSource(source: SecretSource, what: string, setting: string): string {
  let value: string;
  if ('file' in source) {
    try {
      value = readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new KeyringError('settings', `cannot read the ${what} from ${setting}_FILE (${source.file}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
  } else value = source.value;
  if (!value) throw new KeyringError('settings', `the ${what} in ${setting}${'file' in source ? '_FILE' : ''} is empty`);
  return value;
}

const SETTING_FOR: Record<Protection['kind'], string> = {
  plain: 'no LINKGW_KEYRING_PASSPHRASE* and no LINKGW_PKCS11_* settings',
  passphrase: 'LINKGW_KEYRING_PASSPHRASE_FILE (or LINKGW_KEYRING_PASSPHRASE)',
  pkcs11: 'LINKGW_PKCS11_MODULE, LINKGW_PKCS11_TOKEN and LINKGW_PKCS11_PIN_FILE (or LINKGW_PKCS11_PIN)',
};

/**
 * The backend for a keyring protected as `protection`, unlocked with what the settings give. A mismatch (an
 * HSM keyring without PKCS#11 settings, a passphrase next to a plain file, …) is refused: running on another
 * protection than the operator configured would hide a mistake.
 */
export async function openBackend(protection: Protection, unlock: KeyringSettings, where: string): Promise<KeyBackend> {
  if (unlock.backend !== protection.kind)
    throw new KeyringError('settings', `${where} is a ${protection.kind} keyring, but the settings are for a ${unlock.backend} one: set ${SETTING_FOR[protection.kind]}`);
  if (protection.kind === 'plain') return new InFileBackend(protection, PLAIN_CIPHER);
  if (protection.kind === 'passphrase' && unlock.backend === 'passphrase') {
    const passphrase = readSecretSource(unlock.passphrase, 'keyring passphrase', 'LINKGW_KEYRING_PASSPHRASE');
    return new InFileBackend(protection, await PassphraseCipher.derive(passphrase, protection));
  }
  if (protection.kind === 'pkcs11' && unlock.backend === 'pkcs11') {
    // Loaded on demand: a gateway without an HSM never loads the native PKCS#11 binding.
    const { Pkcs11Backend } = await import('./pkcs11-backend.js');
    return Pkcs11Backend.open(unlock, protection);
  }
  throw new KeyringError('settings', `${where}: unknown protection`);
}

/** A backend for a new protection (wrapping a keyring, or a keyring made from scratch). */
export async function createBackend(unlock: KeyringSettings): Promise<KeyBackend> {
  switch (unlock.backend) {
    case 'plain':
      return new InFileBackend({ kind: 'plain' }, PLAIN_CIPHER);
    case 'passphrase': {
      const passphrase = readSecretSource(unlock.passphrase, 'keyring passphrase', 'LINKGW_KEYRING_PASSPHRASE');
      const { cipher, protection } = await PassphraseCipher.create(passphrase);
      return new InFileBackend(protection, cipher);
    }
    case 'pkcs11': {
      const { Pkcs11Backend } = await import('./pkcs11-backend.js');
      return Pkcs11Backend.create(unlock);
    }
  }
}
