/**
 * Backup and restore drill (issue 21 item 3): `linkgw records backup FILE` copies the SQLite store while a
 * gateway keeps writing, and verifies the copy; restored into a new data directory (with the keyring), the
 * store verifies, is consistent with a checkpoint saved before the backup, and a gateway resumes its log there.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { killChildren, servingAddresses, startChild } from '../helpers/gateway-child.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const clients: AgencyClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  killChildren();
});
afterAll(() => killChildren());

function linkgw(env: Record<string, string>, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const REPLICA = 'drill-0';

describe('backup and restore drill (SQLite)', () => {
  it('backs up while traffic runs; the restored store verifies, agrees with a checkpoint kept before, and a gateway resumes the log', { timeout: 180_000 }, async () => {
    const a = tempDir();
    const envA = { LINKGW_DATA_DIR: a, LINKGW_REPLICA_ID: REPLICA, LINKGW_CHECKPOINT_INTERVAL_MS: '50' };
    const gw = startChild({ ...envA, LINKGW_LOG_LEVEL: 'info' });
    const c = new AgencyClient({ address: (await servingAddresses(gw)).address, agency: 'pension', pkiDir: join(a, 'pki') });
    clients.push(c);

    // Traffic for the whole of the backup.
    let stop = false;
    let issued = 0;
    const numbers = population(5000, 211);
    const traffic = (async () => {
      while (!stop) {
        await Promise.all([0, 1, 2, 3].map(() => c.issueCode(numbers[issued++ % numbers.length]!)));
      }
    })();
    await until(() => issued >= 40, 20_000);

    // A checkpoint kept before the backup (as an auditor or a witness would keep one).
    const kept = await linkgw(envA, ['records', 'checkpoints']);
    expect(kept.code, kept.stderr).toBe(0);
    const keptFile = join(tempDir(), 'checkpoints-before.jsonl');
    writeFileSync(keptFile, kept.stdout);
    const keptSize = Number(jsonLines(kept.stdout)[0]!.size);
    expect(keptSize).toBeGreaterThan(0);
    await until(() => issued >= keptSize + 40, 20_000);

    const backupFile = join(tempDir(), 'records-backup.sqlite');
    const atStart = issued;
    const b = await linkgw(envA, ['records', 'backup', backupFile, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const made = jsonLines(b.stdout)[0]!;
    expect(made).toMatchObject({ file: backupFile, logs: 1 });
    expect(made.records).toBeGreaterThanOrEqual(keptSize);
    // The traffic went on during the backup: records were written after it started.
    await until(() => issued > atStart + 20, 20_000);
    stop = true;
    await traffic;
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(existsSync(`${backupFile}.partial`)).toBe(false);
    gw.child.kill('SIGTERM');
    expect((await gw.exited).code).toBe(0);

    // Restore into a new data directory: the backup as records.sqlite, the keyring (and the dev PKI) beside it.
    const r = tempDir();
    copyFileSync(join(a, 'keyring.json'), join(r, 'keyring.json'));
    cpSync(join(a, 'pki'), join(r, 'pki'), { recursive: true });
    copyFileSync(backupFile, join(r, 'records.sqlite'));
    const envR = { LINKGW_DATA_DIR: r, LINKGW_REPLICA_ID: REPLICA };
    const verified = await linkgw(envR, ['records', 'verify', '--against', keptFile, '--json']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const restored = jsonLines(verified.stdout);
    expect(restored.at(-1)).toMatchObject({ logs: 1, tampered: 0 });
    expect(restored[0]).toMatchObject({ logId: REPLICA, records: made.records, problem: null });

    // A gateway resumes the restored log (and signs what the copy held unsigned), then writes on.
    const resumed = startChild({ ...envR, LINKGW_CHECKPOINT_INTERVAL_MS: '50', LINKGW_LOG_LEVEL: 'info' });
    const c2 = new AgencyClient({ address: (await servingAddresses(resumed)).address, agency: 'pension', pkiDir: join(r, 'pki') });
    clients.push(c2);
    for (const n of population(5, 212)) await c2.issueCode(n);
    resumed.child.kill('SIGTERM');
    expect((await resumed.exited).code).toBe(0);
    const after = await linkgw(envR, ['records', 'verify', '--against', keptFile, '--json']);
    expect(after.code, after.stdout + after.stderr).toBe(0);
    const lines = jsonLines(after.stdout);
    expect(lines[0]).toMatchObject({ logId: REPLICA, records: (made.records as number) + 5, unsigned: 0, problem: null });
    expect(lines.at(-1)).toMatchObject({ tampered: 0 });
  });

  it('refuses a PostgreSQL store (its own tools back it up) and an existing file', async () => {
    const pg = await linkgw({ LINKGW_DATA_DIR: tempDir(), LINKGW_RECORDS_URL: 'postgres://nobody@127.0.0.1:1/none' }, ['records', 'backup', join(tempDir(), 'x.sqlite')]);
    expect(pg.code).toBe(1);
    expect(pg.stderr).toContain('pg_basebackup');
    const dir = tempDir();
    const gw = startChild({ LINKGW_DATA_DIR: dir, LINKGW_REPLICA_ID: 'drill-1', LINKGW_LOG_LEVEL: 'info' });
    await servingAddresses(gw);
    const there = join(dir, 'there.sqlite');
    writeFileSync(there, 'x');
    const exists = await linkgw({ LINKGW_DATA_DIR: dir }, ['records', 'backup', there]);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toContain('exists already');
  });
});
