/**
 * The IssueCodes request scanner against protobuf-es: the same numbers for every message protobuf-es reads, and
 * Malformed (-1) for exactly the messages it refuses, including fuzzed ones.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { numberText, scanIssueCodesRequest } from '../../src/engine/issue-codes-wire.js';
import { IssueCodesRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { population } from '../helpers/population.js';

/** What protobuf-es reads, or null when it refuses the bytes. */
function reference(bytes: Uint8Array): string[] | null {
  try {
    return fromBinary(IssueCodesRequestSchema, bytes).personalNumbers;
  } catch {
    return null;
  }
}

/** What the scanner reads, or null for Malformed. */
function scanned(bytes: Uint8Array): string[] | null {
  const n = scanIssueCodesRequest(bytes);
  if (n < 0) return null;
  const spans = new Uint32Array(2 * n);
  expect(scanIssueCodesRequest(bytes, spans)).toBe(n);
  return Array.from({ length: n }, (_, i) => numberText(bytes, spans[2 * i]!, spans[2 * i + 1]!));
}

const encode = (personalNumbers: string[]) => toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers }));
const bytes = (...b: number[]) => new Uint8Array(b);

/** A small deterministic PRNG, so a failing case can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('scanIssueCodesRequest', () => {
  it('reads what protobuf-es reads from well-formed messages', () => {
    const samples: string[][] = [
      [],
      [''],
      population(1000, 5),
      ['12345678901', '1234567890123', 'abcdefghijkl', '１２３４５６７８９０１２', '\uFEFF12345678901', 'ä'.repeat(40), '😀', 'x'.repeat(300)],
      ['000000000000', '0'.repeat(12), ' 12345678901', '12345678901\u0000'],
    ];
    for (const numbers of samples) {
      const b = encode(numbers);
      expect(scanned(b)).toEqual(reference(b));
      expect(scanned(b)).toEqual(numbers);
    }
  });

  it('reads a buffer that is a view into a larger one', () => {
    const inner = encode(population(10, 6));
    const outer = new Uint8Array(inner.length + 20);
    outer.set(inner, 7);
    const view = Buffer.from(outer.buffer, 7, inner.length);
    expect(scanned(view)).toEqual(reference(inner));
  });

  it('is Malformed exactly when protobuf-es throws, on hand-made edge cases', () => {
    const cases: Uint8Array[] = [
      bytes(0x0a), // tag without length
      bytes(0x0a, 0x05, 0x31), // string longer than the message
      bytes(0x0a, 0x02, 0xc3, 0x28), // invalid UTF-8
      bytes(0x0a, 0x03, 0xef, 0xbb, 0xbf), // a BOM alone (valid)
      bytes(0x00), // field number 0
      bytes(0x0e), // wire type 6
      bytes(0x0f), // wire type 7
      bytes(0x08, 0x02, 0x31, 0x32), // field 1 with the varint wire type: read as a string anyway
      bytes(0x09, 0x01, 0x31), // field 1, fixed64 wire type, read as a string
      bytes(0x0c, 0x00), // field 1, end-group wire type, read as a string (empty)
      bytes(0x10, 0x96, 0x01), // unknown varint field 2
      bytes(0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // over-long varint
      bytes(0x11, 1, 2, 3, 4, 5, 6, 7, 8), // unknown fixed64
      bytes(0x11, 1, 2, 3), // truncated fixed64
      bytes(0x15, 1, 2, 3, 4), // unknown fixed32
      bytes(0x1b, 0x08, 0x01, 0x1c), // group 3 { field 1 varint }
      bytes(0x1b, 0x08, 0x01, 0x24), // group 3 closed by group 4
      bytes(0x1b, 0x08, 0x01), // unterminated group
      bytes(0x1c), // stray end-group
      bytes(0x1a, 0x80, 0x80, 0x80, 0x80, 0x10), // length 2^32
      bytes(0xf8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00), // tag that overflows uint32
      bytes(0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00), // field 2^29-1, length-delimited, empty
      new Uint8Array(0),
      bytes(...Array.from({ length: 120 }, () => 0x1b), ...Array.from({ length: 120 }, () => 0x1c)), // deep groups
    ];
    for (const c of cases) expect({ c: [...c], got: scanned(c) }).toEqual({ c: [...c], got: reference(c) });
  });

  it('is Malformed exactly when protobuf-es throws, on fuzzed messages', () => {
    const next = rng(20261208);
    const base = encode([...population(20, 7), '', 'abc', 'ü'.repeat(12), '1234567890123']);
    let malformed = 0;
    for (let round = 0; round < 4000; round++) {
      const b = Uint8Array.from(base);
      const kind = round % 4;
      let m: Uint8Array;
      if (kind === 0) {
        for (let k = 0; k < 1 + Math.floor(next() * 4); k++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
        m = b;
      } else if (kind === 1) m = b.subarray(0, Math.floor(next() * b.length));
      else if (kind === 2) {
        const at = Math.floor(next() * b.length);
        const extra = Array.from({ length: 1 + Math.floor(next() * 6) }, () => Math.floor(next() * 256));
        m = Uint8Array.from([...b.subarray(0, at), ...extra, ...b.subarray(at)]);
      } else m = Uint8Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256));
      const want = reference(m);
      if (want === null) malformed++;
      expect(scanned(m), `round ${round}: ${Buffer.from(m).toString('hex')}`).toEqual(want);
    }
    // The fuzzing reached both sides.
    expect(malformed).toBeGreaterThan(500);
    expect(malformed).toBeLessThan(3900);
  });
});
