/**
 * Agency codes (機関別符号): encode-then-encipher (Bellare and Rogaway, 2000).
 *
 *   block  = 0x01 ‖ number (40 bits, big-endian) ‖ tag(agency) (80 bits)        16 bytes
 *   code   = base32( version ‖ AES-256(K[version, agency], block) )               28 characters
 *   K[v,a] = HKDF-SHA256(master[v], "agency-code:" ‖ a)
 *
 * AES under a secret key is a pseudorandom permutation, so the code of a person at one agency says nothing
 * about its code at another (different keys) nor about the number. Decoding deciphers and then checks the
 * 88 bits of fixed redundancy (format byte and agency tag) and the number's check digit: a forged or altered
 * code, or another agency's code, passes with probability about 2^-88 and is otherwise rejected, never
 * decoded to some other person. The version byte selects the master key, so keys rotate while old codes keep
 * decoding; changing the version byte changes the key and fails the check like any other alteration.
 *
 * Pure: Node's crypto only. Cipher objects are created once per (version, agency) and reused (ECB keeps no
 * state between blocks), and many blocks go through one `update` call in the batch functions.
 */
import { createCipheriv, createDecipheriv, createHash, type Cipher, type Decipher } from 'node:crypto';
import { base32Decode, base32Encode } from './base32.js';
import { deriveKey } from './key-derivation.js';
import { personalNumberCheckDigit, formatPersonalNumber } from './personal-number.js';

export const CODE_BYTES = 17;
export const CODE_LENGTH = 28;
const BLOCK = 16;
const FORMAT = 0x01;
const TAG_BYTES = 10;
const MAX_NUMBER = 1e12;

export interface MasterKeys {
  /** The version new codes are issued under. */
  readonly current: number;
  /** Master secrets by version (1..255), 32 bytes each. */
  readonly masters: ReadonlyMap<number, Uint8Array>;
}

export type DecodeProblem = 'format' | 'unknown-key-version' | 'not-authentic';
export type Decoded = { ok: true; number: number; version: number } | { ok: false; problem: DecodeProblem };

interface AgencyCipher {
  readonly tag: Buffer;
  readonly enc: Cipher;
  readonly dec: Decipher;
}

export function agencyTag(agency: string): Buffer {
  return createHash('sha256').update('linkgw/agency-tag\0').update(agency, 'utf8').digest().subarray(0, TAG_BYTES);
}

export class AgencyCodec {
  readonly #keys: MasterKeys;
  readonly #ciphers = new Map<string, AgencyCipher>();

  constructor(keys: MasterKeys) {
    if (!keys.masters.has(keys.current)) throw new RangeError('the current key version has no master key');
    for (const [v, k] of keys.masters) {
      if (!Number.isInteger(v) || v < 1 || v > 255) throw new RangeError('key versions are 1..255');
      if (k.length !== 32) throw new RangeError('master keys are 32 bytes');
    }
    this.#keys = keys;
  }

  get currentVersion(): number {
    return this.#keys.current;
  }

  #cipher(version: number, agency: string): AgencyCipher | undefined {
    const id = `${version}\0${agency}`;
    let c = this.#ciphers.get(id);
    if (c) return c;
    const master = this.#keys.masters.get(version);
    if (!master) return undefined;
    const key = deriveKey(master, `agency-code:${agency}`);
    const enc = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const dec = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    key.fill(0);
    c = { tag: agencyTag(agency), enc, dec };
    this.#ciphers.set(id, c);
    return c;
  }

  /** The agency's code for a valid personal number (as returned by checkPersonalNumber). */
  encode(agency: string, number: number): string {
    return this.encodeMany(agency, [number])[0]!;
  }

  /** Codes for many numbers with one AES call. */
  encodeMany(agency: string, numbers: ArrayLike<number>): string[] {
    const version = this.#keys.current;
    const c = this.#cipher(version, agency)!;
    const n = numbers.length;
    const plain = Buffer.allocUnsafe(n * BLOCK);
    for (let i = 0; i < n; i++) writeBlock(plain, i * BLOCK, numbers[i]!, c.tag);
    const sealed = c.enc.update(plain);
    plain.fill(0);
    const out = new Array<string>(n);
    const one = Buffer.allocUnsafe(CODE_BYTES);
    one[0] = version;
    for (let i = 0; i < n; i++) {
      sealed.copy(one, 1, i * BLOCK, (i + 1) * BLOCK);
      out[i] = base32Encode(one);
    }
    return out;
  }

  /**
   * The codes of many numbers as bytes, `CODE_BYTES` each (key version, then the AES block), packed in input
   * order: what `encodeMany` writes in base32, for callers that write the text straight into a message
   * (`base32EncodeInto`) instead of making a string per code.
   */
  encodeManyRaw(agency: string, numbers: ArrayLike<number>): Buffer {
    const version = this.#keys.current;
    const c = this.#cipher(version, agency)!;
    const n = numbers.length;
    const plain = Buffer.allocUnsafe(n * BLOCK);
    // writeBlock's bytes, written one by one: Buffer method calls per block cost more than the AES here.
    const tag = c.tag;
    for (let i = 0, at = 0; i < n; i++, at += BLOCK) {
      const v = numbers[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= MAX_NUMBER) throw new RangeError('not a personal number');
      const lo = v >>> 0;
      plain[at] = FORMAT;
      plain[at + 1] = (v - lo) / 2 ** 32;
      plain[at + 2] = lo >>> 24;
      plain[at + 3] = lo >>> 16;
      plain[at + 4] = lo >>> 8;
      plain[at + 5] = lo;
      for (let k = 0; k < TAG_BYTES; k++) plain[at + 6 + k] = tag[k]!;
    }
    const sealed = c.enc.update(plain);
    plain.fill(0);
    const out = Buffer.allocUnsafe(n * CODE_BYTES);
    for (let i = 0, from = 0, to = 0; i < n; i++, to += CODE_BYTES) {
      out[to] = version;
      for (let k = 1; k <= BLOCK; k++) out[to + k] = sealed[from++]!;
    }
    return out;
  }

  decode(agency: string, code: string): Decoded {
    return this.decodeMany(agency, [code])[0]!;
  }

  /** Decodes many codes of one agency; each result says whether that code was authentic. */
  decodeMany(agency: string, codes: ArrayLike<string>): Decoded[] {
    const n = codes.length;
    const out = new Array<Decoded>(n);
    // Group by key version so each version's blocks go through one AES call.
    const byVersion = new Map<number, { index: number[]; blocks: Buffer[] }>();
    for (let i = 0; i < n; i++) {
      const code = codes[i]!;
      const raw = typeof code === 'string' ? base32Decode(code, CODE_BYTES) : null;
      if (!raw) {
        out[i] = { ok: false, problem: 'format' };
        continue;
      }
      const version = raw[0]!;
      if (!this.#keys.masters.has(version)) {
        out[i] = { ok: false, problem: 'unknown-key-version' };
        continue;
      }
      let g = byVersion.get(version);
      if (!g) byVersion.set(version, (g = { index: [], blocks: [] }));
      g.index.push(i);
      g.blocks.push(Buffer.from(raw.buffer, raw.byteOffset + 1, BLOCK));
    }
    for (const [version, g] of byVersion) {
      const c = this.#cipher(version, agency)!;
      const plain = c.dec.update(Buffer.concat(g.blocks));
      for (let j = 0; j < g.index.length; j++) {
        const number = readBlock(plain, j * BLOCK, c.tag);
        out[g.index[j]!] = number === null ? { ok: false, problem: 'not-authentic' } : { ok: true, number, version };
      }
      plain.fill(0);
    }
    return out;
  }
}

function writeBlock(buf: Buffer, at: number, number: number, tag: Buffer): void {
  if (!Number.isInteger(number) || number < 0 || number >= MAX_NUMBER) throw new RangeError('not a personal number');
  buf[at] = FORMAT;
  buf.writeUIntBE(number, at + 1, 5);
  tag.copy(buf, at + 6);
}

function readBlock(buf: Buffer, at: number, tag: Buffer): number | null {
  if (buf[at] !== FORMAT) return null;
  if (buf.compare(tag, 0, TAG_BYTES, at + 6, at + BLOCK) !== 0) return null;
  const number = buf.readUIntBE(at + 1, 5);
  if (number >= MAX_NUMBER) return null;
  const digits = formatPersonalNumber(number);
  if (personalNumberCheckDigit(digits) !== digits.charCodeAt(11) - 48) return null;
  return number;
}
