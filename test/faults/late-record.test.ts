/**
 * Issue 9, item 6: a record that lands after its request had failed tells the truth. The commit of a PROVIDED
 * record stalls past LINKGW_RECORD_TIMEOUT_MS (the records table locked by another session), the query fails
 * UNAVAILABLE (nothing released), then the lock goes and the commit lands. The log must not leave a PROVIDED
 * record standing alone: a NOT_RELEASED record naming it follows, the disclosure view lists the pair (the
 * correction right before the record it corrects), and a wrong-binding report does not count the exchange.
 */
import { status } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/gen/linkage/v1/records_pb.js';
import { PG_URL, startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
beforeAll(async () => {
  // The client-side deadline of a commit is longer than the lock is held: the stalled commit lands.
  h = await startHarness({ records: 'postgres', env: { LINKGW_RECORD_TIMEOUT_MS: '500', LINKGW_RECORD_STORE_TIMEOUT_MS: '8000' } });
});
afterAll(async () => {
  await h?.stop();
});

describe('a record that lands after its request failed', () => {
  it('is followed by a NOT_RELEASED record linked to it, and the disclosure view shows the pair', async () => {
    const pension = h.client('pension');
    const disclosure = h.client('disclosure');
    const query = (code: string) => pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    // A person the tax office knows (15 in 16 are), asked once normally.
    let code = '';
    let number = '';
    for (const n of population(20, 61)) {
      const c = (await pension.issueCode(n)).code;
      if ((await query(c).then(() => true, () => false))) {
        code = c;
        number = n;
        break;
      }
    }
    expect(code).not.toBe('');
    const dcode = (await disclosure.issueCode(number)).code;

    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    let failed: { code: number; details: string };
    try {
      await locker.query(`SET search_path = ${h.pgSchema}`);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE access_records IN ACCESS EXCLUSIVE MODE');
      failed = await statusOf(query(code));
      // The commit is still waiting for the lock: let it wait a little longer than the request did.
      await new Promise((r) => setTimeout(r, 700));
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    expect(failed.code).toBe(status.UNAVAILABLE);
    expect(failed.details).toMatch(/nothing was released/);

    // The stalled commit lands once the lock is gone; its correction follows.
    let list: Awaited<ReturnType<typeof disclosure.listRecords>> = [];
    await until(async () => {
      list = await disclosure.listRecords({ code: dcode });
      return list.some((r) => r.outcome === Outcome.NOT_RELEASED);
    }, 10_000);
    const provided = list.filter((r) => r.outcome === Outcome.PROVIDED);
    expect(provided).toHaveLength(2); // the normal query, and the one whose answer was never released
    const correction = list.find((r) => r.outcome === Outcome.NOT_RELEASED)!;
    const late = provided.find((r) => r.recordId === correction.correctsRecordId)!;
    expect(late).toBeDefined();
    // Newest first, the correction comes right before the record it corrects, for the same exchange.
    expect(list.indexOf(correction) + 1).toBe(list.indexOf(late));
    expect(correction).toMatchObject({ requester: 'pension', provider: 'tax', procedure: 'pension.eligibility', item: 'income', legalBasisRow: late.legalBasisRow });
    expect(correction.requestedAt).toEqual(late.requestedAt);
    expect(correction.providedAt).toBeUndefined();
    // Both are in the log, with their proofs once a checkpoint covers them.
    await until(async () => (await disclosure.listRecords({ code: dcode })).every((r) => r.proof !== undefined), 5000);

    // A wrong-binding report lists the exchange that did release data, not the one that did not.
    const report = await pension.reportWrongBinding(code);
    const affected = report.affected.map((a) => a.recordId);
    expect(affected).not.toContain(late.recordId);
    expect(affected).toContain(provided.find((r) => r !== late)!.recordId);
  });
});
