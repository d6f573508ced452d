/**
 * The subject key indexes access records by person. It is HMAC-SHA256 of the number under a key derived from
 * the keyring's subject secret, truncated to 128 bits: one-way, stable across code-key rotations, and neither
 * the number nor any agency's code, so the record store can be read by the disclosure service without ever
 * holding either.
 */
import { createHmac } from 'node:crypto';
import { base32Encode } from './base32.js';
import { deriveKey } from './key-derivation.js';

export class SubjectKeys {
  readonly #key: Buffer;

  constructor(subjectSecret: Uint8Array) {
    this.#key = deriveKey(subjectSecret, 'record-subject');
  }

  of(number: number): string {
    const b = Buffer.allocUnsafe(5);
    b.writeUIntBE(number, 0, 5);
    return base32Encode(createHmac('sha256', this.#key).update(b).digest().subarray(0, 16));
  }
}
