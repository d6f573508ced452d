/**
 * The passphrase-wrapped keyring's cipher: one key derived from the passphrase with scrypt (RFC 7914), then
 * every secret sealed with AES-256-GCM under a fresh 96-bit nonce, with the secret's slot name as associated
 * data so that an entry moved to another slot fails to open.
 *
 * scrypt N = 2^17, r = 8, p = 1 (128 MiB, the OWASP recommendation for scrypt): about 0.75 s on this project's
 * 2-core machine under load (measured with `crypto.scryptSync`), paid once per start and once per operator
 * command. The parameters are stored in the file, so they can be raised later without breaking old files.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { KeyringError } from './keyring-error.js';
import type { Protection } from './keyring-document.js';
import type { SecretCipher } from './key-backend.js';

type PassphraseProtection = Extract<Protection, { kind: 'passphrase' }>;

const DEFAULT = { N: 2 ** 17, r: 8, p: 1 } as const;
/** A file may not demand more than this (a tampered file must not make every start take minutes). */
const MAX_N = 2 ** 20;
const MIN_PASSPHRASE = 12;
const IV = 12;
const TAG = 16;

function kdf(passphrase: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function aad(slot: string): Buffer {
  return Buffer.from(`linkgw-keyring-v2\0${slot}`, 'utf8');
}

export class PassphraseCipher implements SecretCipher {
  private constructor(private readonly key: Buffer) {}

  /** A new protection: fresh salt, default cost. Refuses passphrases too short to resist guessing. */
  static async create(passphrase: string): Promise<{ cipher: PassphraseCipher; protection: PassphraseProtection }> {
    if ([...passphrase].length < MIN_PASSPHRASE) throw new KeyringError('settings', `a keyring passphrase has at least ${MIN_PASSPHRASE} characters`);
    const salt = randomBytes(16);
    const protection: PassphraseProtection = { kind: 'passphrase', kdf: 'scrypt', salt: salt.toString('base64'), ...DEFAULT, cipher: 'aes-256-gcm' };
    return { cipher: new PassphraseCipher(await kdf(passphrase, salt, DEFAULT.N, DEFAULT.r, DEFAULT.p)), protection };
  }

  /** The cipher of an existing file. A wrong passphrase shows on the first `open` (the GCM tag fails). */
  static async derive(passphrase: string, p: PassphraseProtection): Promise<PassphraseCipher> {
    if (p.kdf !== 'scrypt' || p.cipher !== 'aes-256-gcm') throw new KeyringError('format', 'the keyring uses a passphrase scheme this version does not know');
    if (!Number.isInteger(p.N) || p.N < 2 || p.N > MAX_N || (p.N & (p.N - 1)) !== 0 || p.r < 1 || p.r > 32 || p.p < 1 || p.p > 16)
      throw new KeyringError('format', 'the keyring asks for scrypt parameters out of range');
    return new PassphraseCipher(await kdf(passphrase, Buffer.from(p.salt, 'base64'), p.N, p.r, p.p));
  }

  seal(slot: string, secret: Uint8Array): string {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', this.key, iv).setAAD(aad(slot));
    const body = Buffer.concat([c.update(secret), c.final()]);
    return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64');
  }

  open(slot: string, stored: string): Buffer {
    const raw = Buffer.from(stored, 'base64');
    if (raw.length < IV + TAG) throw new KeyringError('format', `the keyring entry ${slot} is truncated`);
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV)).setAAD(aad(slot));
    d.setAuthTag(raw.subarray(raw.length - TAG));
    try {
      return Buffer.concat([d.update(raw.subarray(IV, raw.length - TAG)), d.final()]);
    } catch (e) {
      throw new KeyringError('wrong-passphrase', 'the keyring passphrase is wrong (or the keyring file was altered): check LINKGW_KEYRING_PASSPHRASE_FILE', { cause: e });
    }
  }
}
