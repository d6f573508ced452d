/**
 * Issue 9, item 7: every start-up failure says what failed and exits non-zero, in bounded time. Before: a full
 * disk at first start printed `linkgw: [object Object]`, and LINKGW_DATA_DIR under /proc spun forever (SIGTERM
 * could not stop it).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgSchema, tempDir } from '../helpers/gateway-harness.js';
import { killChildren, startChild } from '../helpers/gateway-child.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  killChildren();
  for (const c of cleanups) await c();
});

/** The exit and the CLI's last line, or a failure if it has not exited within `ms`. */
async function exitOf(g: ReturnType<typeof startChild>, ms: number): Promise<{ code: number | null; last: string; tookMs: number }> {
  const t0 = Date.now();
  const timer = setTimeout(() => g.child.kill('SIGKILL'), ms);
  const e = await g.exited;
  clearTimeout(timer);
  if (e.signal === 'SIGKILL') throw new Error(`still running after ${ms} ms:\n${g.log()}`);
  const lines = g.log().trim().split('\n');
  return { code: e.code, last: lines.filter((l) => l.startsWith('linkgw: ') || l.startsWith('  ')).join('\n'), tookMs: Date.now() - t0 };
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('start-up failures', () => {
  it('an unusable LINKGW_DATA_DIR fails at once, naming the path', async () => {
    const r = await exitOf(startChild({ LINKGW_DATA_DIR: '/proc/linkgw' }), 15_000);
    expect(r.code).toBe(78);
    expect(r.last).toMatch(/LINKGW_DATA_DIR: \/proc\/linkgw cannot be created/);
  });

  it('a file in place of the data directory fails at once, naming it', async () => {
    const file = join(tempDir(), 'not-a-dir');
    await import('node:fs').then((fs) => fs.writeFileSync(file, 'x'));
    const r = await exitOf(startChild({ LINKGW_DATA_DIR: join(file, 'data') }), 15_000);
    expect(r.code).toBe(78);
    expect(r.last).toContain(`${file} is not a directory`);
  });

  it('a disk that cannot take the SQLite store says so, with SQLite\'s code, never [object Object]', async () => {
    // Files may grow to 12 KiB: the keyring and the dev PKI fit, the record store does not (SIGXFSZ ignored,
    // so writes fail as on a full disk).
    const dataDir = tempDir();
    const r = await exitOf(startChild({ LINKGW_DATA_DIR: dataDir }, ['serve'], { shell: 'trap "" XFSZ; ulimit -f 12' }), 30_000);
    expect(r.code).toBe(1);
    expect(r.last).not.toContain('[object Object]');
    expect(r.last).toMatch(new RegExp(`linkgw: the SQLite record store ${join(dataDir, 'records.sqlite').replace(/[.]/g, '\\.')} could not be opened: .+ \\(SQLITE_[A-Z_]+\\)`));
  });

  it('PostgreSQL that never comes: waits as long as allowed, logging, then fails naming it', async () => {
    const port = await closedPort();
    const g = startChild({ LINKGW_DATA_DIR: tempDir(), LINKGW_RECORDS_URL: `postgres://postgres@127.0.0.1:${port}/test?schema=t_never`, LINKGW_RECORD_STORE_WAIT_S: '2' });
    const r = await exitOf(g, 20_000);
    expect(r.code).toBe(1);
    expect(g.log()).toMatch(/"msg":"waiting for the record store \(PostgreSQL\)"/);
    expect(r.last).toMatch(new RegExp(`linkgw: PostgreSQL at 127\\.0\\.0\\.1:${port}/test did not accept connections within [12] s: .*ECONNREFUSED`));
  });

  it('PostgreSQL that refuses the login fails at once, without waiting', async () => {
    const db = await createPgSchema();
    cleanups.push(db.drop);
    const role = `nobody_${randomBytes(3).toString('hex')}`;
    const url = db.url.replace('postgres://postgres@', `postgres://${role}@`);
    const g = startChild({ LINKGW_DATA_DIR: tempDir(), LINKGW_RECORDS_URL: url, LINKGW_RECORD_STORE_WAIT_S: '60' });
    const r = await exitOf(g, 20_000);
    expect(r.code).toBe(1);
    expect(g.log()).not.toMatch(/waiting for the record store/);
    expect(r.last).toMatch(new RegExp(`linkgw: PostgreSQL at 127\\.0\\.0\\.1:5432/test refused the record store's connection: .*${role}`));
  });
});
