/**
 * A record store that stops answering (here: PostgreSQL with the records table locked by another session)
 * must not hold requests: they fail UNAVAILABLE after LINKGW_RECORD_TIMEOUT_MS with nothing released, /readyz
 * says 503 while the commit hangs, and everything recovers when the store does.
 */
import { status } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { SubjectKeys } from '../../src/core/subject-key.js';
import { PG_URL, startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
beforeAll(async () => {
  // The commit's own deadline is longer than the stall: the stalled commit lands once the lock goes.
  h = await startHarness({ records: 'postgres', env: { LINKGW_RECORD_TIMEOUT_MS: '500', LINKGW_RECORD_STORE_TIMEOUT_MS: '10000' } });
});
afterAll(async () => {
  await h?.stop();
});

function value(n: string): number {
  const c = checkPersonalNumber(n);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
}

const ready = async () => (await fetch(`http://${h.gw.opsAddress}/readyz`)).status;

describe('a stalled record store', () => {
  it('fails requests UNAVAILABLE in time, is not ready while stalled, and recovers', async () => {
    const [a, b, c] = population(3, 77);
    const pension = h.client('pension');
    await pension.issueCode(a!);
    expect(await ready()).toBe(200);

    const locker = new pg.Client({ connectionString: PG_URL });
    await locker.connect();
    try {
      await locker.query(`SET search_path = ${h.pgSchema}`);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE access_records IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      // b's record goes into the commit that hangs; c's waits behind it in the queue.
      const first = statusOf(pension.issueCode(b!, 10_000));
      await new Promise((r) => setTimeout(r, 100));
      const second = statusOf(pension.issueCode(c!, 10_000));
      for (const s of await Promise.all([first, second])) {
        expect(s.code).toBe(status.UNAVAILABLE);
        expect(s.details).toMatch(/did not answer in time; nothing was released/);
      }
      expect(Date.now() - started).toBeLessThan(3000);
      await until(async () => (await ready()) === 503, 3000);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    await until(async () => (await ready()) === 200, 5000);
    // c's record, still queued when its request failed, was dropped with it; b's was already in the commit
    // and landed when the store came back (a store cannot take back a commit in progress), followed by the
    // record that says its code was not released (its request had failed).
    const subjects = new SubjectKeys(h.gw.keyring.subjectSecret);
    const outcomes = async (n: string) => {
      const q = new pg.Client({ connectionString: PG_URL });
      await q.connect();
      try {
        await q.query(`SET search_path = ${h.pgSchema}`);
        return (await q.query('SELECT outcome FROM access_records WHERE subject = $1 ORDER BY leaf_index', [subjects.of(value(n))])).rows.map((r) => r.outcome as number);
      } finally {
        await q.end();
      }
    };
    const count = async (n: string) => (await outcomes(n)).length;
    expect(await count(c!)).toBe(0);
    await until(async () => (await count(b!)) === 2, 5000);
    expect(await outcomes(b!)).toEqual([Outcome.ISSUED, Outcome.NOT_RELEASED]);
    await expect(pension.issueCode(c!)).resolves.toMatchObject({ code: expect.any(String) });
    expect(await count(c!)).toBe(1);
  });
});
