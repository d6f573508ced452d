/**
 * IssueCodes messages on the wire, read and written without one JS object per item: the server's
 * deserializer (grpc/service-definition.ts) only scans a request, and a bulk task (bulk-batch.ts, on a worker
 * thread) reads its numbers and writes the whole response.
 *
 *   IssueCodesRequest  { repeated string personal_numbers = 1; }
 *   IssueCodesResponse { uint64 offset = 1; repeated IssueCodeResult results = 2; string record_id = 3; }
 *   IssueCodeResult    { string code = 1; int32 status = 2; string error = 3; }
 *
 * Reading accepts and refuses exactly what protobuf-es `fromBinary` does (it uses protobuf-es's own
 * BinaryReader for tags, varints and skipped fields, and the same strict UTF-8 check of string fields), so a
 * request is Malformed here when and only when it would have been before. Writing gives the bytes protobuf-es
 * `toBinary` gives for the same message (fields in number order, zero values left out), which the tests check.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { isAscii as isAsciiNative } from 'node:buffer';

/** protobuf-es decodes string fields of proto3 files strictly (invalid UTF-8 fails the message). */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** The recursion budget protobuf-es leaves for skipping an unknown field of a top-level message (100 − 1). */
const SKIP_DEPTH = 99;

/**
 * Scans an IssueCodesRequest: the number of `personal_numbers`, or -1 when `fromBinary` would throw. With
 * `spans` (2 × count entries), also where each number's bytes are: start and length, in order.
 */
export function scanIssueCodesRequest(bytes: Uint8Array, spans?: Uint32Array): number {
  const r = new BinaryReader(bytes);
  const end = bytes.length;
  // An all-ASCII message (the usual bulk message: tags, short lengths and digits) needs no UTF-8 check per string.
  const ascii = isAsciiBuffer(bytes);
  let n = 0;
  try {
    while (r.pos < end) {
      let at = r.pos;
      let len: number;
      if (bytes[at] === TAG_NUMBER && at + 1 < end && bytes[at + 1]! < 0x80) {
        // The common case in two bytes: tag 1/LEN and a one-byte length, what BinaryReader would read there.
        len = bytes[at + 1]!;
        at += 2;
        if (at + len > end) return -1;
        r.pos = at + len;
      } else {
        const [no, wt] = r.tag();
        if (no !== 1) {
          r.skip(wt, no, SKIP_DEPTH);
          continue;
        }
        // protobuf-es reads field 1 as a string whatever its wire type says (a length-prefixed value).
        const value = r.bytes();
        at = value.byteOffset - bytes.byteOffset;
        len = value.length;
      }
      if (!ascii && !isAscii(bytes, at, len)) strictUtf8.decode(bytes.subarray(at, at + len));
      if (spans) {
        spans[2 * n] = at;
        spans[2 * n + 1] = len;
      }
      n++;
    }
  } catch {
    return -1;
  }
  return n;
}

/** Tag of personal_numbers (field 1, length-delimited). */
const TAG_NUMBER = (1 << 3) | WireType.LengthDelimited;

function isAsciiBuffer(b: Uint8Array): boolean {
  return b.length > 0 && isAsciiNative(b);
}

function isAscii(b: Uint8Array, from: number, len: number): boolean {
  for (let i = from, end = from + len; i < end; i++) if (b[i]! > 0x7f) return false;
  return true;
}

/** A number of a scanned request as the string protobuf-es makes of it (for the rare item that is not 12 digits). */
export function numberText(bytes: Uint8Array, start: number, len: number): string {
  if (isAscii(bytes, start, len)) return Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('latin1');
  return strictUtf8.decode(bytes.subarray(start, start + len));
}

export function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes a non-negative integer below 2^53 as a varint; returns the position after it. */
export function writeVarint(out: Uint8Array, at: number, v: number): number {
  while (v >= 128) {
    out[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at++] = v;
  return at;
}

/** Tags of the fields written here (field number << 3 | wire type). */
const TAG_OFFSET = (1 << 3) | WireType.Varint;
const TAG_RESULT = (2 << 3) | WireType.LengthDelimited;
const TAG_RECORD_ID = (3 << 3) | WireType.LengthDelimited;
const TAG_CODE = (1 << 3) | WireType.LengthDelimited;
const TAG_STATUS = (2 << 3) | WireType.Varint;
const TAG_ERROR = (3 << 3) | WireType.LengthDelimited;

/** google.rpc.Code INVALID_ARGUMENT: the status of an item whose number is not a personal number. */
export const ITEM_INVALID = 3;

/** Bytes of one result holding a code of `codeLength` ASCII characters (tag and length included). */
export function okResultBytes(codeLength: number): number {
  const inner = 1 + varintLength(codeLength) + codeLength;
  return 1 + varintLength(inner) + inner;
}

/** Writes the head of an OK result up to its code's characters; returns where the code goes. */
export function writeOkResultHead(out: Uint8Array, at: number, codeLength: number): number {
  out[at++] = TAG_RESULT;
  at = writeVarint(out, at, 1 + varintLength(codeLength) + codeLength);
  out[at++] = TAG_CODE;
  return writeVarint(out, at, codeLength);
}

/** Bytes of one failed result (status INVALID_ARGUMENT, `error` as UTF-8 bytes), tag and length included. */
export function errorResultBytes(error: Uint8Array): number {
  const inner = 2 + (error.length > 0 ? 1 + varintLength(error.length) + error.length : 0);
  return 1 + varintLength(inner) + inner;
}

export function writeErrorResult(out: Uint8Array, at: number, error: Uint8Array): number {
  out[at++] = TAG_RESULT;
  at = writeVarint(out, at, 2 + (error.length > 0 ? 1 + varintLength(error.length) + error.length : 0));
  out[at++] = TAG_STATUS;
  out[at++] = ITEM_INVALID;
  if (error.length > 0) {
    out[at++] = TAG_ERROR;
    at = writeVarint(out, at, error.length);
    out.set(error, at);
    at += error.length;
  }
  return at;
}

/** Bytes of the response's offset field (none for 0). */
export function offsetBytes(offset: number): number {
  return offset > 0 ? 1 + varintLength(offset) : 0;
}

export function writeOffset(out: Uint8Array, at: number, offset: number): number {
  if (offset <= 0) return at;
  out[at++] = TAG_OFFSET;
  return writeVarint(out, at, offset);
}

/** Bytes of the response's record_id field (none when empty); `id` is its UTF-8 bytes. */
export function recordIdBytes(id: Uint8Array): number {
  return id.length > 0 ? 1 + varintLength(id.length) + id.length : 0;
}

export function writeRecordId(out: Uint8Array, at: number, id: Uint8Array): number {
  if (id.length === 0) return at;
  out[at++] = TAG_RECORD_ID;
  at = writeVarint(out, at, id.length);
  out.set(id, at);
  return at + id.length;
}
