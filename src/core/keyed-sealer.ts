/**
 * Keyed names and sealed values for one purpose (the conversion cache, idempotency…), under keys derived from
 * one secret: what lets shared state (Redis) hold entries that name no one and that no one can read.
 *
 *   name(parts)       = prefix ‖ base64url(HMAC-SHA256(K_name, len ':' part ‖ len ':' part …)[0..16])
 *   seal(name, plain) = 0x01 ‖ nonce ‖ AES-256-GCM(K_entry, nonce, plain, AD = name) ‖ tag
 *   K_entry           = HMAC-SHA256(K_seal, name)
 *
 * The parts are length-prefixed, so no choice of agency id or code can make two inputs collide. A per-entry key
 * keeps AES-GCM's random-nonce bound (2^32 seals per key) out of reach however long the secret lives: each
 * entry key seals only the few values ever written under that one name. The name as associated data (and in
 * the entry key) means a value copied to another name does not open.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { deriveKey } from './key-derivation.js';

const SEAL_FORMAT = 0x01;
const NONCE = 12;
const TAG = 16;
/** Bytes of HMAC kept in a key name: 128 bits, so collisions are out of reach for any realistic key count. */
const NAME_BYTES = 16;

export class KeyedSealer {
  readonly #nameKey: Buffer;
  readonly #sealKey: Buffer;
  readonly #prefix: string;

  constructor(secret: Uint8Array, purposes: { name: string; seal: string }, prefix: string) {
    if (secret.length < 32) throw new RangeError('the cache secret must be at least 32 bytes');
    if (purposes.name === purposes.seal) throw new RangeError('name and seal purposes must differ');
    this.#nameKey = deriveKey(secret, purposes.name);
    this.#sealKey = deriveKey(secret, purposes.seal);
    this.#prefix = prefix;
  }

  name(...parts: (string | number)[]): string {
    // Each part as `<length>:<part>`: a prefix code, so the concatenation parses back one way only.
    let input = '';
    for (const p of parts) {
      const s = typeof p === 'number' ? String(p) : p;
      input += `${s.length}:${s}`;
    }
    const mac = createHmac('sha256', this.#nameKey).update(input, 'utf8').digest();
    return this.#prefix + mac.toString('base64url', 0, NAME_BYTES);
  }

  seal(name: string, plain: Uint8Array): Buffer {
    const key = createHmac('sha256', this.#sealKey).update(name, 'utf8').digest();
    const nonce = randomBytes(NONCE);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(Buffer.from(name, 'utf8'));
    const body = c.update(plain);
    c.final();
    key.fill(0);
    return Buffer.concat([Buffer.of(SEAL_FORMAT), nonce, body, c.getAuthTag()]);
  }

  /** The plaintext, or null for anything that is not a value sealed under this name. Never throws. */
  open(name: string, sealed: unknown): Buffer | null {
    if (!Buffer.isBuffer(sealed) || sealed.length < 1 + NONCE + TAG || sealed[0] !== SEAL_FORMAT) return null;
    const key = createHmac('sha256', this.#sealKey).update(name, 'utf8').digest();
    try {
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + NONCE));
      d.setAAD(Buffer.from(name, 'utf8'));
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      const plain = d.update(sealed.subarray(1 + NONCE, sealed.length - TAG));
      d.final();
      return plain;
    } catch {
      return null;
    } finally {
      key.fill(0);
    }
  }
}
