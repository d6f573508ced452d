/**
 * Issue 9, item 1: PostgreSQL closing the gateway's connections, over and over, in the middle of its commits
 * (pg_terminate_backend of its own backends, found by application_name = linkgw/<replica>) never crashes it,
 * and it serves again within seconds; a gateway started while PostgreSQL is down waits for it (logging) instead
 * of exiting at once. Every answer released has its record.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { backendsOf, terminateBackends } from '../helpers/pg-backends.js';
import { PgProxy } from '../helpers/pg-proxy.js';
import { createPgSchema, PG_URL, tempDir } from '../helpers/gateway-harness.js';
import { killChildren, servingAddresses, startChild } from '../helpers/gateway-child.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  killChildren();
  for (const c of cleanups.reverse()) await c();
});

async function recordIdsIn(schema: string, ids: readonly string[]): Promise<Set<string>> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    const r = await c.query<{ record_id: string }>(`SELECT record_id FROM ${schema}.access_records WHERE record_id = ANY($1)`, [ids]);
    return new Set(r.rows.map((x) => x.record_id));
  } finally {
    await c.end();
  }
}

describe('PostgreSQL closing the gateway\'s connections', () => {
  it('repeatedly, mid-traffic: no crash, service again within seconds, no answer without its record', async () => {
    const db = await createPgSchema();
    cleanups.push(db.drop);
    const replica = `faults-term-${randomBytes(3).toString('hex')}`;
    const dataDir = tempDir();
    const gw = startChild({ LINKGW_DATA_DIR: dataDir, LINKGW_RECORDS_URL: db.url, LINKGW_REPLICA_ID: replica, LINKGW_RECORD_STORE_TIMEOUT_MS: '2000' });
    const { address } = await servingAddresses(gw);
    const client = new AgencyClient({ address, agency: 'pension', pkiDir: join(dataDir, 'pki') });
    cleanups.push(() => client.close());
    const app = `linkgw/${replica}`;
    expect((await backendsOf(PG_URL, app)).length).toBeGreaterThan(0);

    // Traffic from 4 callers for the whole test; each answer with its record id.
    const released: string[] = [];
    let failures = 0;
    let running = true;
    const numbers = population(100_000, 9);
    let next = 0;
    const caller = async () => {
      while (running) {
        try {
          released.push((await client.issueCode(numbers[next++ % numbers.length]!, 5000)).recordId);
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const callers = Array.from({ length: 4 }, caller);
    await until(() => released.length > 20, 10_000);

    // Terminate every session of the gateway every 250 ms for 4 s.
    let terminated = 0;
    for (const end = Date.now() + 4000; Date.now() < end; ) {
      terminated += await terminateBackends(PG_URL, app);
      await new Promise((r) => setTimeout(r, 250));
    }
    const stoppedAt = Date.now();
    const before = released.length;
    // Service again within seconds, the process never gone.
    await until(() => released.length > before + 20, 10_000);
    const recoveredMs = Date.now() - stoppedAt;
    running = false;
    await Promise.all(callers);
    expect(gw.child.exitCode).toBeNull();
    expect(gw.log()).not.toMatch(/Unhandled 'error' event|uncaughtException/);
    expect(terminated).toBeGreaterThan(10);
    console.log(`terminated ${terminated} sessions; ${released.length} answers, ${failures} failures; served again ${recoveredMs} ms after the last termination`);
    // Every answer released has its record.
    const stored = await recordIdsIn(db.schema, released);
    expect(released.filter((id) => !stored.has(id))).toEqual([]);
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);
  });

  it('at start while PostgreSQL is down: waits for it, logging, and serves once it comes', async () => {
    const db = await createPgSchema();
    cleanups.push(db.drop);
    const proxy = new PgProxy();
    await proxy.restore();
    await proxy.cut(); // a port nothing listens on: connections are refused
    cleanups.push(() => proxy.close());
    const dataDir = tempDir();
    const gw = startChild({ LINKGW_DATA_DIR: dataDir, LINKGW_RECORDS_URL: proxy.url(db.url), LINKGW_REPLICA_ID: `faults-wait-${randomBytes(3).toString('hex')}` });
    await gw.waitFor(/"msg":"waiting for the record store \(PostgreSQL\)".*"attempt":2/, 20_000);
    expect(gw.child.exitCode).toBeNull();
    await proxy.restore();
    const { address } = await servingAddresses(gw, 20_000);
    const client = new AgencyClient({ address, agency: 'pension', pkiDir: join(dataDir, 'pki') });
    cleanups.push(() => client.close());
    await expect(client.issueCode(population(1, 4)[0]!)).resolves.toMatchObject({ recordId: expect.any(String) });
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);
  });
});
