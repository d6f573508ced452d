/**
 * A record store that stops answering (here: PostgreSQL with the records table locked by another session)
 * must not hold requests: they fail UNAVAILABLE after LINKGW_RECORD_TIMEOUT_MS with nothing released, /readyz
 * says 503 while the commit hangs, and everything recovers when the store does.
 */
import { status } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ records: 'postgres', env: { LINKGW_RECORD_TIMEOUT_MS: '500' } });
});
afterAll(async () => {
  await h?.stop();
});

const ready = async () => (await fetch(`http://${h.gw.opsAddress}/readyz`)).status;

describe('a stalled record store', () => {
  it('fails requests UNAVAILABLE in time, is not ready while stalled, and recovers', async () => {
    const [a, b] = population(2, 77);
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
      const s = await statusOf(pension.issueCode(b!, 10_000));
      expect(s.code).toBe(status.UNAVAILABLE);
      expect(s.details).toMatch(/did not answer in time; nothing was released/);
      expect(Date.now() - started).toBeLessThan(3000);
      await until(async () => (await ready()) === 503, 3000);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    await until(async () => (await ready()) === 200, 5000);
    await expect(pension.issueCode(b!)).resolves.toMatchObject({ code: expect.any(String) });
  });
});
