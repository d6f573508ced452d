/**
 * The packed forms bulk issuance uses (SubjectKeys.rawMany, AgencyCodec.encodeManyRaw, base32EncodeInto) against
 * an independent computation and against the text forms they stand for.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgencyCodec, CODE_BYTES } from '../../src/core/agency-code.js';
import { base32Decode, base32Encode, base32EncodeInto } from '../../src/core/base32.js';
import { deriveKey } from '../../src/core/key-derivation.js';
import { SubjectKeys } from '../../src/core/subject-key.js';

const numbers = [1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 123_456_789_012, 999_999_999_999, 2 ** 40 - 1];

describe('raw subject keys and codes', () => {
  it('rawMany is AES-256 of 0x53 ‖ the number in 5 bytes ‖ zeros under the derived key, and ofMany its base32', () => {
    const secret = randomBytes(32);
    const keys = new SubjectKeys(secret);
    const cipher = createCipheriv('aes-256-ecb', deriveKey(secret, 'record-subject'), null).setAutoPadding(false);
    const raw = keys.rawMany(numbers);
    numbers.forEach((n, i) => {
      const block = Buffer.alloc(16);
      block[0] = 0x53;
      block.writeUIntBE(n, 1, 5);
      const want = cipher.update(block);
      expect(raw.subarray(i * 16, i * 16 + 16)).toEqual(want);
      expect(keys.of(n)).toBe(base32Encode(want));
    });
    expect(() => keys.rawMany([2 ** 40])).toThrow(RangeError);
    expect(() => keys.rawMany([-1])).toThrow(RangeError);
    expect(() => keys.rawMany([1.5])).toThrow(RangeError);
  });

  it('encodeManyRaw holds the bytes of the codes encodeMany writes', () => {
    const codec = new AgencyCodec({ current: 7, masters: new Map([[7, randomBytes(32)]]) });
    const valid = numbers.filter((n) => n < 1e12);
    const raw = codec.encodeManyRaw('pension', valid);
    const codes = codec.encodeMany('pension', valid);
    codes.forEach((c, i) => expect(raw.subarray(i * CODE_BYTES, (i + 1) * CODE_BYTES)).toEqual(Buffer.from(base32Decode(c, CODE_BYTES)!)));
    expect(() => codec.encodeManyRaw('pension', [1e12])).toThrow(RangeError);
  });

  it('base32Encode gives the characters of the plain bit-by-bit encoding, short and long inputs alike', () => {
    const reference = (bytes: Uint8Array) => {
      const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
      let out = '';
      let buffer = 0;
      let bits = 0;
      for (const b of bytes) {
        buffer = (buffer << 8) | b;
        bits += 8;
        while (bits >= 5) {
          bits -= 5;
          out += alphabet[(buffer >>> bits) & 31];
        }
        buffer &= (1 << bits) - 1;
      }
      if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
      return out;
    };
    for (let n = 0; n < 400; n += n < 40 ? 1 : 37) {
      const b = randomBytes(n);
      expect(base32Encode(b)).toBe(reference(b));
      expect(base32Decode(base32Encode(b), n)).toEqual(new Uint8Array(b));
    }
  });

  it('base32EncodeInto writes the characters base32Encode gives', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 16, 17, 33]) {
      const src = randomBytes(n + 3);
      const out = Buffer.alloc(60, 0x2e);
      const end = base32EncodeInto(src, 2, n, out, 5);
      const want = base32Encode(src.subarray(2, 2 + n));
      expect(out.subarray(5, end).toString('latin1')).toBe(want);
      expect(out[4]).toBe(0x2e);
      expect(out[end]).toBe(0x2e);
    }
  });
});
