/**
 * The persons of a batch record as one sorted run: the raw 16-byte subject keys (subject-key.ts before base32),
 * sorted by byte value, each once, packed in one buffer (n × 16 bytes). A bulk-issuance record names up to
 * 10,000 persons; as a run they are one value the record store writes with the record (160 KB, one sequential
 * write), instead of 10,000 rows inserted at random keys while requests wait. The person index is built from the
 * runs behind the commit (docs/adr/0104-person-runs.md).
 *
 * Crockford base32 keeps byte order (its alphabet is in ASCII order and every key has the same length), so the
 * run's order is the order `subjectsCommitment` sorts the keys' text in, and the commitment of a run is the
 * commitment of its keys as text.
 */
import { base32Encode } from './base32.js';
import { sha256 } from './merkle.js';

export const SUBJECT_KEY_BYTES = 16;
/** Length of a subject key as text (base32 of 16 bytes). */
export const SUBJECT_KEY_CHARS = 26;
const SUBJECTS_LABEL = 'linkgw/record-subjects/v1\n';

/** A run: sorted, distinct, 16-byte subject keys. */
export type PersonsRun = Uint8Array;

export function runLength(run: PersonsRun): number {
  return run.byteLength / SUBJECT_KEY_BYTES;
}

/** Compares key `i` of `a` with key `j` of `b` by bytes. */
function compareAt(a: Uint8Array, i: number, b: Uint8Array, j: number): number {
  const x = i * SUBJECT_KEY_BYTES;
  const y = j * SUBJECT_KEY_BYTES;
  for (let k = 0; k < SUBJECT_KEY_BYTES; k++) {
    const d = a[x + k]! - b[y + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Sorts packed 16-byte keys and drops repeats (a person named twice in one message is one person of the record).
 * Returns a new buffer; the input is not changed.
 */
export function runOf(keys: Uint8Array): PersonsRun {
  if (keys.byteLength % SUBJECT_KEY_BYTES !== 0) throw new RangeError('a persons run is a whole number of 16-byte keys');
  const n = keys.byteLength / SUBJECT_KEY_BYTES;
  const order = sortedOrder(keys, n);
  const out = new Uint8Array(n * SUBJECT_KEY_BYTES);
  let m = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    if (m > 0 && compareAt(out, m - 1, keys, i) === 0) continue;
    const from = i * SUBJECT_KEY_BYTES;
    const to = m * SUBJECT_KEY_BYTES;
    for (let k = 0; k < SUBJECT_KEY_BYTES; k++) out[to + k] = keys[from + k]!;
    m++;
  }
  return m === n ? out : out.slice(0, m * SUBJECT_KEY_BYTES);
}

/**
 * The keys' indexes in byte order. Up to 65,536 keys (a bulk message holds at most 10,000): each key's first 36
 * bits and its index packed in one double (52 bits, exact), sorted natively (a comparator sort took five times as
 * long), then the rare groups of keys equal in those 36 bits put in order by their whole bytes.
 */
function sortedOrder(keys: Uint8Array, n: number): Uint32Array {
  const order = new Uint32Array(n);
  if (n > 65_536) {
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => compareAt(keys, a, keys, b));
    return order;
  }
  const dv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = (dv.getUint32(i * 16) * 16 + (keys[i * 16 + 4]! >>> 4)) * 65_536 + i;
  packed.sort();
  for (let i = 0; i < n; i++) order[i] = packed[i]! % 65_536;
  // Keys equal in their first 36 bits: order each such group by whole bytes (insertion sort; groups are tiny).
  const top = (k: number) => Math.floor(packed[k]! / 65_536);
  for (let i = 1; i < n; i++) {
    if (top(i) !== top(i - 1)) continue;
    for (let j = i; j > 0 && top(j) === top(j - 1) && compareAt(keys, order[j - 1]!, keys, order[j]!) > 0; j--) {
      const t = order[j]!;
      order[j] = order[j - 1]!;
      order[j - 1] = t;
    }
  }
  return order;
}

/** True when the run is sorted and has no repeats (a stored run is checked before it is trusted). */
export function isRun(run: Uint8Array): boolean {
  if (run.byteLength % SUBJECT_KEY_BYTES !== 0) return false;
  const n = run.byteLength / SUBJECT_KEY_BYTES;
  for (let i = 1; i < n; i++) if (compareAt(run, i - 1, run, i) >= 0) return false;
  return true;
}

/** The subject keys of a run as text, in order. */
export function runSubjects(run: PersonsRun): string[] {
  const n = runLength(run);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = base32Encode(run.subarray(i * SUBJECT_KEY_BYTES, (i + 1) * SUBJECT_KEY_BYTES));
  return out;
}

/** Whether the run holds `key` (16 bytes): a binary search. */
export function runIncludes(run: PersonsRun, key: Uint8Array): boolean {
  let lo = 0;
  let hi = runLength(run) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareAt(run, mid, key, 0);
    if (c === 0) return true;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ALPHA = Buffer.from(ALPHABET, 'latin1');

/** Writes the base32 text of a 16-byte key into `out` at `at` (26 bytes), without making a string. */
function base32Into(key: Uint8Array, from: number, out: Buffer, at: number): void {
  let buffer = 0;
  let bits = 0;
  let o = at;
  for (let k = 0; k < SUBJECT_KEY_BYTES; k++) {
    buffer = ((buffer << 8) | key[from + k]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[o++] = ALPHA[(buffer >>> bits) & 31]!;
    }
  }
  if (bits > 0) out[o++] = ALPHA[(buffer << (5 - bits)) & 31]!;
}

/**
 * `subjectsCommitment(recordId, runSubjects(run))` (record-leaf.ts), computed straight from the run: the label,
 * the record id and each key's text, each length-prefixed, in the run's order, hashed in one pass.
 */
export function runCommitment(recordId: string, run: PersonsRun): Buffer {
  const n = runLength(run);
  const id = Buffer.from(recordId, 'utf8');
  if (id.length > 0xffff) throw new RangeError('record id too long');
  const buf = Buffer.allocUnsafe(SUBJECTS_LABEL.length + 2 + id.length + n * (2 + SUBJECT_KEY_CHARS));
  let at = buf.write(SUBJECTS_LABEL, 0, 'latin1');
  at = buf.writeUInt16BE(id.length, at);
  at += id.copy(buf, at);
  for (let i = 0; i < n; i++) {
    at = buf.writeUInt16BE(SUBJECT_KEY_CHARS, at);
    base32Into(run, i * SUBJECT_KEY_BYTES, buf, at);
    at += SUBJECT_KEY_CHARS;
  }
  return sha256(buf);
}
