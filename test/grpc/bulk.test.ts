/**
 * Bulk issuance at onboarding scale: 100,000 numbers in one stream, some of them bad, every good one recorded.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population, withBadCheckDigit } from '../helpers/population.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('IssueCodes with 100,000 numbers in one stream', () => {
  it('returns one result per number in order, fails only the bad ones, and records every good one', async () => {
    const N = 100_000;
    const numbers = population(N, 99).map((n, i) => (i % 1000 === 7 ? withBadCheckDigit(n) : i % 1000 === 8 ? n.slice(0, 11) : n));
    const results = await h.client('employment').issueBulk(numbers, 5000);
    expect(results).toHaveLength(N);
    const codec = new AgencyCodec(h.gw.keyring);
    let bad = 0;
    for (let i = 0; i < N; i++) {
      const r = results[i]!;
      if (i % 1000 === 7 || i % 1000 === 8) {
        bad++;
        expect(r.status).toBe(status.INVALID_ARGUMENT);
        expect(r.code).toBe('');
      } else {
        expect(r.status).toBe(0);
        if (i % 997 === 0) {
          const c = checkPersonalNumber(numbers[i]!);
          expect(c.ok && r.code).toBe(c.ok && codec.encode('employment', c.value));
        }
      }
    }
    expect(bad).toBe(200);
    // One record per message (one leaf of the log), naming its persons in the side table.
    const rows = await h.gw.store.readLeaves(h.gw.writer.logId, 0, h.gw.writer.size, 100_000);
    const { batch } = await h.gw.store.storedPersons(h.gw.writer.logId);
    const batches = rows.filter((r) => r.procedure === 'code.issue' && r.requester === 'employment');
    expect(batches).toHaveLength(N / 5000);
    expect(batches.every((r) => r.subject === '' && batch.has(r.recordId))).toBe(true);
    expect(batches.reduce((n, r) => n + (batch.get(r.recordId)?.persons ?? 0), 0)).toBe(N - bad);

    // The disclosure system sees the bulk issuance of a person among the rest.
    const disclosure = h.client('disclosure');
    const dc = (await disclosure.issueCode(numbers[12_345]!)).code;
    const seen = await disclosure.listRecords({ code: dc });
    expect(seen.map((r) => [r.requester, r.procedure])).toEqual([
      ['disclosure', 'code.issue'],
      ['employment', 'code.issue'],
    ]);
    expect(batches.map((r) => r.recordId)).toContain(seen[1]!.recordId);

  });
});
