/**
 * Crockford base32 without padding, upper case on output; decoding accepts lower case and the usual
 * look-alikes (O→0, I/L→1) and rejects anything non-canonical (trailing bits that are not zero).
 */

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) {
  DECODE[ALPHABET.charCodeAt(i)] = i;
  DECODE[ALPHABET.toLowerCase().charCodeAt(i)] = i;
}
for (const [c, v] of [['O', 0], ['o', 0], ['I', 1], ['i', 1], ['L', 1], ['l', 1]] as const) DECODE[c.charCodeAt(0)] = v;

/** Where base32Encode writes the characters of inputs up to 160 bytes before making the one string. */
const SCRATCH = Buffer.allocUnsafe(256);

export function base32Encode(bytes: Uint8Array): string {
  // One string from ASCII bytes: appending a character at a time made a string per character (about 1 KB of
  // garbage for a 16-byte key, and a scavenge every ~3,000 keys with 4 MB semi-spaces).
  const n = base32Length(bytes.length);
  const out = n <= SCRATCH.length ? SCRATCH : Buffer.allocUnsafe(n);
  const end = base32EncodeInto(bytes, 0, bytes.length, out, 0);
  return out.toString('latin1', 0, end);
}

const ALPHABET_BYTES = new Uint8Array(ALPHABET.length);
for (let i = 0; i < ALPHABET.length; i++) ALPHABET_BYTES[i] = ALPHABET.charCodeAt(i);

/**
 * Writes the encoding of `n` bytes of `src` (from `from`) into `out` at `at` as ASCII, the characters
 * `base32Encode` gives, without making a string; returns the position after them.
 */
export function base32EncodeInto(src: Uint8Array, from: number, n: number, out: Uint8Array, at: number): number {
  let buffer = 0;
  let bits = 0;
  for (let i = from, end = from + n; i < end; i++) {
    buffer = ((buffer << 8) | src[i]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[at++] = ALPHABET_BYTES[(buffer >>> bits) & 31]!;
    }
  }
  if (bits > 0) out[at++] = ALPHABET_BYTES[(buffer << (5 - bits)) & 31]!;
  return at;
}

/** Length in characters of `n` bytes encoded. */
export function base32Length(n: number): number {
  return Math.ceil((n * 8) / 5);
}

/** Decodes exactly `n` bytes, or returns null when the text is not a canonical encoding of `n` bytes. */
export function base32Decode(s: string, n: number): Uint8Array | null {
  if (s.length !== base32Length(n)) return null;
  const out = new Uint8Array(n);
  let buffer = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) return null;
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (j < n) out[j++] = (buffer >>> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return null;
  return out;
}
