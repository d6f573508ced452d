/**
 * Issue 9, item 2: a hung database connection (its server process stopped with SIGSTOP: it accepts bytes and
 * never answers, and its own statement_timeout never fires) must not stop record writing. Every store operation
 * has a client-side deadline; a connection that missed one is thrown away and the commit goes to a fresh one;
 * SIGTERM finishes within the shutdown grace whatever the backends do, and what was not committed is failed,
 * never released. These run on a private PostgreSQL cluster: a server process stopped in the middle of its
 * work may hold locks that every session of its cluster waits for.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { backendsOf, signalProcesses } from '../helpers/pg-backends.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { killChildren, servingAddresses, startChild } from '../helpers/gateway-child.js';
import { population } from '../helpers/population.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { until } from '../helpers/wait.js';

let server: PrivatePostgres;
const stopped = new Set<number>();
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  server = await startPrivatePostgres();
});
afterAll(async () => {
  signalProcesses([...stopped], 'SIGCONT');
  killChildren();
  for (const c of cleanups.reverse()) await c();
  await server?.destroy();
});

const schemaUrl = (schema: string) => `${server.url}?schema=${schema}`;

async function storedIds(schema: string, ids: readonly string[]): Promise<Set<string>> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    const r = await c.query<{ record_id: string }>(`SELECT record_id FROM ${schema}.access_records WHERE record_id = ANY($1)`, [ids]);
    return new Set(r.rows.map((x) => x.record_id));
  } finally {
    await c.end();
  }
}

async function stopBackends(application: string): Promise<number[]> {
  const pids = (await backendsOf(server.url, application)).map((b) => b.pid);
  for (const p of pids) stopped.add(p);
  signalProcesses(pids, 'SIGSTOP');
  return pids;
}

function resume(pids: readonly number[]): void {
  signalProcesses(pids, 'SIGCONT');
  for (const p of pids) stopped.delete(p);
}

describe('hung PostgreSQL server processes (SIGSTOP)', () => {
  it('records are committed on fresh connections while the hung ones are still stopped', async () => {
    const schema = `t_hung_${randomBytes(4).toString('hex')}`;
    const replica = `faults-hung-${randomBytes(3).toString('hex')}`;
    const h = await startHarness({
      pgUrl: schemaUrl(schema),
      env: { LINKGW_REPLICA_ID: replica, LINKGW_RECORD_STORE_TIMEOUT_MS: '1000', LINKGW_RECORD_TIMEOUT_MS: '8000' },
    });
    cleanups.push(() => h.stop());
    const pension = h.client('pension');
    const numbers = population(40, 31);
    for (const n of numbers.slice(0, 5)) await pension.issueCode(n);
    // Quiet: the last checkpoint stored, every session idle, so that none is stopped holding a lock.
    await until(async () => (await h.gw.store.latestCheckpoints())[0]?.size === h.gw.writer.size, 10_000);
    await until(async () => (await backendsOf(server.url, `linkgw/${replica}`)).every((b) => b.state === 'idle'), 5000);
    const pids = await stopBackends(`linkgw/${replica}`);
    expect(pids.length).toBeGreaterThanOrEqual(2); // the log's lock and the appender, at least

    const started = Date.now();
    const answers = await Promise.all(numbers.slice(5, 25).map((n) => pension.issueCode(n, 15_000)));
    const tookMs = Date.now() - started;
    // Still stopped, and yet every answer's record is in the store.
    expect((await backendsOf(server.url, `linkgw/${replica}`)).filter((b) => pids.includes(b.pid)).length).toBe(pids.length);
    const ids = answers.map((a) => a.recordId);
    const stored = await storedIds(schema, ids);
    expect(ids.filter((id) => !stored.has(id))).toEqual([]);
    console.log(`20 records committed on fresh connections in ${tookMs} ms with ${pids.length} server processes stopped`);
    resume(pids);
    await expect(pension.issueCode(numbers[30]!)).resolves.toMatchObject({ recordId: expect.any(String) });
    expect(h.gw.writer.ready()).toBe(true);
  });

  it('stopped in the middle of traffic: calls end in bounded time, readiness says so, and all comes back after', async () => {
    const schema = `t_hung_${randomBytes(4).toString('hex')}`;
    const replica = `faults-mid-${randomBytes(3).toString('hex')}`;
    const h = await startHarness({
      pgUrl: schemaUrl(schema),
      env: { LINKGW_REPLICA_ID: replica, LINKGW_RECORD_STORE_TIMEOUT_MS: '1000', LINKGW_RECORD_TIMEOUT_MS: '3000' },
    });
    cleanups.push(() => h.stop());
    const pension = h.client('pension');
    const numbers = population(100_000, 32);
    const released: string[] = [];
    let longest = 0;
    let running = true;
    let i = 0;
    const caller = async () => {
      while (running) {
        const t0 = Date.now();
        try {
          released.push((await pension.issueCode(numbers[i++]!, 20_000)).recordId);
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
        longest = Math.max(longest, Date.now() - t0);
      }
    };
    const callers = Array.from({ length: 4 }, caller);
    await until(() => released.length > 20, 10_000);
    const pids = await stopBackends(`linkgw/${replica}`);
    const readiness: number[] = [];
    for (const end = Date.now() + 4000; Date.now() < end; ) {
      readiness.push((await fetch(`http://${h.gw.opsAddress}/readyz`)).status);
      await new Promise((r) => setTimeout(r, 200));
    }
    resume(pids);
    const before = released.length;
    await until(() => released.length > before + 20, 15_000);
    await until(async () => (await fetch(`http://${h.gw.opsAddress}/readyz`)).status === 200, 10_000);
    running = false;
    await Promise.all(callers);
    // No call waited much past its record timeout (3 s), whatever the server processes did.
    expect(longest).toBeLessThan(3000 + 2500);
    const stored = await storedIds(schema, released);
    expect(released.filter((id) => !stored.has(id))).toEqual([]);
    console.log(`readiness while stopped: ${readiness.join(' ')}; longest call ${longest} ms; ${released.length} answers, all recorded`);
  });

  it('SIGTERM with hung server processes finishes within the shutdown grace, and releases nothing unrecorded', async () => {
    const schema = `t_hung_${randomBytes(4).toString('hex')}`;
    const replica = `faults-term-${randomBytes(3).toString('hex')}`;
    const dataDir = tempDir();
    const gw = startChild({ LINKGW_DATA_DIR: dataDir, LINKGW_RECORDS_URL: schemaUrl(schema), LINKGW_REPLICA_ID: replica, LINKGW_RECORD_STORE_TIMEOUT_MS: '1000' });
    const { address } = await servingAddresses(gw);
    const client = new AgencyClient({ address, agency: 'pension', pkiDir: join(dataDir, 'pki') });
    cleanups.push(() => client.close());
    const numbers = population(100_000, 33);
    const released: string[] = [];
    let errors = 0;
    let running = true;
    let i = 0;
    const caller = async () => {
      while (running) {
        try {
          released.push((await client.issueCode(numbers[i++]!, 30_000)).recordId);
        } catch {
          errors++;
          if (gw.child.exitCode !== null) return;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const callers = Array.from({ length: 4 }, caller);
    await until(() => released.length > 20, 10_000);
    const pids = await stopBackends(`linkgw/${replica}`);
    await new Promise((r) => setTimeout(r, 500));
    const termAt = Date.now();
    gw.child.kill('SIGTERM');
    const exit = await gw.exited;
    running = false;
    await Promise.all(callers);
    const stopMs = exit.at - termAt;
    resume(pids);
    console.log(`stopped ${stopMs} ms after SIGTERM (grace 10000 ms), exit ${exit.code}; ${released.length} answers, ${errors} errors`);
    expect(exit.code).toBe(0);
    expect(stopMs).toBeLessThan(10_000);
    // After the server processes resume: every answer that was released has its record.
    await new Promise((r) => setTimeout(r, 500));
    const stored = await storedIds(schema, released);
    expect(released.filter((id) => !stored.has(id))).toEqual([]);
  });
});
