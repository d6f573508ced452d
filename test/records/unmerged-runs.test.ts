/** The in-memory side of the runs not merged yet (src/records/unmerged-runs.ts): filters, order, bounds. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runOf } from '../../src/core/persons-run.js';
import { UnmergedRuns } from '../../src/records/unmerged-runs.js';

describe('UnmergedRuns', () => {
  it('names every run that holds a key, and few that do not', () => {
    const u = new UnmergedRuns();
    const runs = Array.from({ length: 50 }, () => runOf(randomBytes(16 * 1000)));
    runs.forEach((run, i) => u.add({ logId: 'l', leafIndex: i, recordId: `r${i}` }, run));
    expect(u.persons).toBe(50_000);
    for (let i = 0; i < 50; i += 7) {
      const key = runs[i]!.subarray(16 * 123, 16 * 124);
      expect(u.candidates(key).map((c) => c.recordId)).toContain(`r${i}`);
    }
    // Absent keys: about 1% of the filters answer "maybe"; 2,000 lookups × 50 runs, well under 3% in all.
    let maybes = 0;
    for (let k = 0; k < 2000; k++) maybes += u.candidates(randomBytes(16)).length;
    expect(maybes / (2000 * 50)).toBeLessThan(0.03);
  });

  it('hands the oldest runs to the indexer by persons, at least one, and forgets merged and purged ones', () => {
    const u = new UnmergedRuns();
    [5, 5, 20, 1].forEach((n, i) => u.add({ logId: i === 3 ? 'm' : 'l', leafIndex: i, recordId: `r${i}` }, runOf(randomBytes(16 * n))));
    expect(u.oldest(10).map((p) => p.recordId)).toEqual(['r0', 'r1']);
    u.merged(2);
    expect(u.oldest(10).map((p) => p.recordId)).toEqual(['r2']);
    u.purged('l', 3);
    expect(u.oldest(100).map((p) => p.recordId)).toEqual(['r3']);
    expect(u.persons).toBe(1);
  });
});
