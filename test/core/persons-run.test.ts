/** The persons of a batch record as one sorted run (src/core/persons-run.ts). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isRun, runCommitment, runIncludes, runLength, runOf, runSubjects } from '../../src/core/persons-run.js';
import { subjectsCommitment } from '../../src/core/record-leaf.js';

/** Keys that tie in their first bytes, so the sort's tie-break is exercised. */
function tied(n: number): Buffer {
  const b = Buffer.alloc(16 * n);
  for (let i = 0; i < n; i++) {
    b.fill(0x7a, i * 16, i * 16 + 5);
    b[i * 16 + 9] = 200 - i;
  }
  return b;
}

describe('persons runs', () => {
  it('sort by bytes and keep each key once, whatever the input order and repeats', () => {
    for (let n = 0; n < 300; n += 37) {
      const keys = randomBytes(16 * n);
      const input = Buffer.concat([keys, keys.subarray(0, 16 * Math.min(n, 3)), tied(4), tied(2)]);
      const run = runOf(input);
      expect(isRun(run)).toBe(true);
      expect(runLength(run)).toBe(n + 4);
      const expected = [...new Set(Array.from({ length: input.length / 16 }, (_, i) => input.subarray(i * 16, i * 16 + 16).toString('hex')))].sort();
      expect(Array.from({ length: runLength(run) }, (_, i) => Buffer.from(run.subarray(i * 16, i * 16 + 16)).toString('hex'))).toEqual(expected);
    }
  });

  it('commit to the same value as the subject keys as text, in any order', () => {
    const run = runOf(Buffer.concat([randomBytes(16 * 500), tied(3)]));
    const text = runSubjects(run);
    expect(runCommitment('R-1', run)).toEqual(subjectsCommitment('R-1', text));
    expect(runCommitment('R-1', run)).toEqual(subjectsCommitment('R-1', [...text].reverse()));
    expect(runCommitment('R-2', run)).not.toEqual(subjectsCommitment('R-1', text));
    expect(runCommitment('R-1', new Uint8Array(0))).toEqual(subjectsCommitment('R-1', []));
  });

  it('find exactly the keys they hold', () => {
    const keys = randomBytes(16 * 1000);
    const run = runOf(keys);
    for (let i = 0; i < 1000; i += 97) expect(runIncludes(run, keys.subarray(i * 16, i * 16 + 16))).toBe(true);
    expect(runIncludes(run, randomBytes(16))).toBe(false);
    expect(runIncludes(new Uint8Array(0), randomBytes(16))).toBe(false);
  });

  it('refuse what is not whole keys, and tell an unsorted or repeated run', () => {
    expect(() => runOf(new Uint8Array(17))).toThrow(RangeError);
    const run = runOf(randomBytes(16 * 4));
    const swapped = Buffer.concat([run.subarray(16, 32), run.subarray(0, 16), run.subarray(32)]);
    expect(isRun(swapped)).toBe(false);
    expect(isRun(Buffer.concat([run.subarray(0, 16), run.subarray(0, 16)]))).toBe(false);
  });
});
