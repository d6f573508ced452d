/**
 * `linkgw records seal` (issue 21 item 1): a gateway killed with SIGKILL leaves its newest records committed
 * but unsigned; `records seal` takes the dead replica's log (its writer lock) and signs the tail, after which
 * `records verify` passes with nothing unsigned. A log whose gateway is alive is left to it. A replica stopped
 * by SIGTERM (a scale-down) signs its own tail as it closes.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { createPgSchema, tempDir, type StoreKind } from '../helpers/gateway-harness.js';
import { killChildren, servingAddresses, startChild } from '../helpers/gateway-child.js';
import { population } from '../helpers/population.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const clients: AgencyClient[] = [];
const drops: (() => Promise<void>)[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  killChildren();
});
afterAll(async () => {
  for (const d of drops.splice(0)) await d();
});

/** Runs the CLI; its exit code and output. */
function linkgw(env: Record<string, string>, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe.each<StoreKind>(['sqlite', 'postgres'])('records seal (%s)', (kind) => {
  it('signs the tail a killed gateway left unsigned; records verify then passes with 0 unsigned; a live log is left alone', { timeout: 180_000 }, async () => {
    const dir = tempDir();
    const env: Record<string, string> = { LINKGW_DATA_DIR: dir, LINKGW_LOG_LEVEL: 'warn' };
    if (kind === 'postgres') {
      const pg = await createPgSchema();
      drops.push(pg.drop);
      env.LINKGW_RECORDS_URL = pg.url;
    }
    // The first checkpoint is signed at the first commit; the next would wait an hour: the rest stays unsigned.
    const dead = startChild({ ...env, LINKGW_REPLICA_ID: 'seal-0', LINKGW_CHECKPOINT_INTERVAL_MS: '3600000', LINKGW_LOG_LEVEL: 'info' });
    const { address } = await servingAddresses(dead);
    const c = new AgencyClient({ address, agency: 'pension', pkiDir: join(dir, 'pki') });
    clients.push(c);
    for (const n of population(12, 21)) await c.issueCode(n);
    dead.child.kill('SIGKILL');
    expect((await dead.exited).signal).toBe('SIGKILL');

    // A second replica, alive: its log is being written, so seal leaves it to its writer.
    const live = startChild({ ...env, LINKGW_REPLICA_ID: 'seal-1', LINKGW_LOG_LEVEL: 'info' });
    const other = new AgencyClient({ address: (await servingAddresses(live)).address, agency: 'pension', pkiDir: join(dir, 'pki') });
    clients.push(other);
    await other.issueCode(population(1, 22)[0]!);

    const before = await linkgw(env, ['records', 'verify', '--json']);
    expect(before.code, before.stderr).toBe(0);
    const deadReport = jsonLines(before.stdout).find((r) => r.logId === 'seal-0')!;
    expect(deadReport).toMatchObject({ records: 12 });
    expect(deadReport.unsigned).toBeGreaterThan(0);

    const sealed = await linkgw(env, ['records', 'seal', '--json']);
    expect(sealed.code, sealed.stderr).toBe(0);
    const results = Object.fromEntries(jsonLines(sealed.stdout).map((r) => [r.logId, r]));
    expect(results['seal-0']).toMatchObject({ result: 'sealed', size: 12, signedAfter: 12 });
    expect((results['seal-0'] as { signedBefore: number }).signedBefore).toBeLessThan(12);
    expect(['writer running', 'signed already']).toContain(results['seal-1']!.result);
    // The live gateway still writes its log.
    await other.issueCode(population(1, 23)[0]!);

    // Sealing again has nothing to do; a log that does not exist is an error.
    const again = await linkgw(env, ['records', 'seal', '--log', 'seal-0', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(jsonLines(again.stdout)[0]).toMatchObject({ logId: 'seal-0', result: 'signed already' });
    const missing = await linkgw(env, ['records', 'seal', '--log', 'no-such-log']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no log "no-such-log"');

    live.child.kill('SIGTERM');
    expect((await live.exited).code).toBe(0);
    const after = await linkgw(env, ['records', 'verify', '--json']);
    expect(after.code, after.stderr).toBe(0);
    const lines = jsonLines(after.stdout);
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ logs: 2, tampered: 0, unsigned: 0 });
    expect(lines.find((r) => r.logId === 'seal-0')).toMatchObject({ records: 12, unsigned: 0, problem: null });
  });
});

describe('scaling down (SIGTERM)', () => {
  it('leaves nothing unsigned: a replica that is stopped signs its tail as it closes, whatever the interval', { timeout: 180_000 }, async () => {
    const dir = tempDir();
    const env = { LINKGW_DATA_DIR: dir, LINKGW_LOG_LEVEL: 'warn' };
    // As a StatefulSet's highest ordinal removed by a scale-down: the next checkpoint would be an hour away.
    const g = startChild({ ...env, LINKGW_REPLICA_ID: 'scaled-2', LINKGW_CHECKPOINT_INTERVAL_MS: '3600000', LINKGW_LOG_LEVEL: 'info' });
    const c = new AgencyClient({ address: (await servingAddresses(g)).address, agency: 'pension', pkiDir: join(dir, 'pki') });
    clients.push(c);
    for (const n of population(8, 24)) await c.issueCode(n);
    const before = jsonLines((await linkgw(env, ['records', 'verify', '--json'])).stdout);
    expect((before[0] as { unsigned: number }).unsigned).toBeGreaterThan(0);
    g.child.kill('SIGTERM');
    expect((await g.exited).code).toBe(0);
    const after = await linkgw(env, ['records', 'verify', '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(jsonLines(after.stdout)[0]).toMatchObject({ logId: 'scaled-2', records: 8, unsigned: 0, problem: null });
  });
});
