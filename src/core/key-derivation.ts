/**
 * Key derivation: every working key is derived with HKDF-SHA256 (RFC 5869) from a 32-byte secret of the
 * keyring, under a label that names its one purpose, so that no two purposes ever share a key.
 */
import { hkdfSync } from 'node:crypto';

const SALT = Buffer.from('linkgw/v1');

export function deriveKey(secret: Uint8Array, purpose: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, Buffer.from(purpose, 'utf8'), length));
}
