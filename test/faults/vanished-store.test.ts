/**
 * Issue 20, items 2–4: a SQLite store removed under a running gateway (a replaced volume, an operator's
 * mistake). Before the fix every later call was answered OK with its record written into the deleted file,
 * /readyz stayed 200, a restart began a new log at 0, and `records verify` on the missing store created an empty
 * one and passed. Now: no call is answered OK after the removal, readiness says why (with no traffic too), a
 * restart is refused, and verify refuses a missing store without creating anything.
 */
import { status } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { settingsFromEnv } from '../../src/config/settings.js';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log/logger.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const bin = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function readyz(h: Harness): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${h.gw.opsAddress}/readyz`);
  return { status: r.status, body: await r.text() };
}

async function gauge(h: Harness, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://${h.gw.opsAddress}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

const removeStore = (dataDir: string) => {
  for (const f of ['records.sqlite', 'records.sqlite-wal', 'records.sqlite-shm']) rmSync(join(dataDir, f), { force: true });
};

describe('a SQLite store removed under a running gateway', () => {
  it('answers no call OK after the removal, says not ready and why, and a restart is refused', async () => {
    const dataDir = tempDir();
    const h = await startHarness({ dataDir, env: { LINKGW_RECORD_TIMEOUT_MS: '3000' } });
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : h.stop()), () => rmSync(dataDir, { recursive: true, force: true }));
    const pension = h.client('pension');
    const numbers = population(12, 77);
    for (const n of numbers.slice(0, 3)) await pension.issueCode(n);
    expect((await readyz(h)).status).toBe(200);
    expect(await gauge(h, 'linkgw_record_store_ready')).toBe(1);

    removeStore(dataDir);
    const outcomes = await Promise.all(numbers.slice(3).map((n) => statusOf(pension.issueCode(n)).catch(() => ({ code: status.OK, details: 'answered OK' }))));
    // Not one answered: each was refused, nothing was released.
    expect(outcomes.map((o) => o.code)).toEqual(outcomes.map(() => status.UNAVAILABLE));
    expect(outcomes[0]!.details).toMatch(/nothing was released/);
    const down = await readyz(h);
    expect(down.status).toBe(503);
    expect(down.body).toMatch(/record store is gone/);
    expect(await gauge(h, 'linkgw_record_store_ready')).toBe(0);
    expect(h.logs()).toMatch(/the access record store is gone/);
    await h.stop();
    stopped = true;

    // The next start finds the store missing where logs were written: it refuses instead of beginning again at 0.
    const s = settingsFromEnv({ LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0' });
    await expect(startGateway(s, { log: silentLogger })).rejects.toThrow(/is missing, but logs were written there before/);
    expect(existsSync(join(dataDir, 'records.sqlite'))).toBe(false);
  });

  it('says not ready within seconds with no traffic at all', async () => {
    const h = await startHarness();
    cleanups.push(() => h.stop());
    await h.client('pension').issueCode(population(1, 78)[0]!);
    expect((await readyz(h)).status).toBe(200);
    removeStore(h.dataDir);
    // The idle check runs every 2 s: well within the 5 s the issue asks for.
    await until(async () => (await readyz(h)).status === 503, 5000);
    expect((await readyz(h)).body).toMatch(/record store is gone/);
  });
});

describe('records verify, checkpoints and purge on a missing store', () => {
  it('refuse it with an error that says so, and create nothing', async () => {
    const dataDir = tempDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir };
    for (const args of [['records', 'verify'], ['records', 'checkpoints'], ['records', 'purge', '--before', '2020-01-01T00:00:00Z']]) {
      const r = await run(process.execPath, [bin, ...args], { env }).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(r, args.join(' ')).not.toBeNull();
      expect(r!.code).not.toBe(0);
      expect(r!.stderr).toMatch(/record store .*records\.sqlite does not exist/);
      expect(existsSync(join(dataDir, 'records.sqlite'))).toBe(false);
    }
  });
});
