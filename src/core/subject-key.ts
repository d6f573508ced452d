/**
 * The subject key indexes access records by person: AES-256 of the number (one block) under a key derived
 * from the keyring's subject secret, as 26 base32 characters. It is stable across code-key rotations and is
 * neither the number nor any agency's code, so the record store can serve the disclosure system without
 * holding either.
 *
 * It is encryption, not a one-way function: whoever holds the subject secret deciphers it to the number. Over
 * a domain of 10^12 numbers any keyed function, HMAC included, is inverted by whoever holds its key by trying
 * them all, and by nobody without it, so a one-way construction would protect nothing more than a block cipher,
 * which is ~100× cheaper in batches. The index is as safe as the subject secret (docs/threat-model.md), and it
 * is one value per person at every agency: a store dump links all records of one subject.
 */
import { createCipheriv, type Cipher } from 'node:crypto';
import { base32Encode } from './base32.js';
import { deriveKey } from './key-derivation.js';

const DOMAIN = 0x53; // 'S': no agency-code block (0x01) can collide with a subject block

export class SubjectKeys {
  readonly #cipher: Cipher;

  constructor(subjectSecret: Uint8Array) {
    const key = deriveKey(subjectSecret, 'record-subject');
    this.#cipher = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    key.fill(0);
  }

  of(number: number): string {
    return this.ofMany([number])[0]!;
  }

  ofMany(numbers: ArrayLike<number>): string[] {
    const n = numbers.length;
    const out = this.rawMany(numbers);
    const keys = new Array<string>(n);
    for (let i = 0; i < n; i++) keys[i] = base32Encode(out.subarray(i * 16, i * 16 + 16));
    return keys;
  }

  /**
   * The keys of many numbers as raw AES blocks, packed (16 bytes each, in input order): what `ofMany` encodes
   * in base32, and what a persons run (persons-run.ts) is made of. One `update` call, no strings.
   */
  rawMany(numbers: ArrayLike<number>): Buffer {
    const n = numbers.length;
    const plain = Buffer.alloc(n * 16);
    for (let i = 0, at = 0; i < n; i++, at += 16) {
      // writeUIntBE(v, at + 1, 5), byte by byte (a method call per block cost as much as the AES).
      const v = numbers[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= 2 ** 40) throw new RangeError('not a personal number');
      const lo = v >>> 0;
      plain[at] = DOMAIN;
      plain[at + 1] = (v - lo) / 2 ** 32;
      plain[at + 2] = lo >>> 24;
      plain[at + 3] = lo >>> 16;
      plain[at + 4] = lo >>> 8;
      plain[at + 5] = lo;
    }
    const out = this.#cipher.update(plain);
    plain.fill(0);
    return out;
  }
}
