/**
 * Issue 12 item 3: numbered schema migrations. Gateways (and `linkgw migrate` Jobs) starting together on an
 * empty PostgreSQL schema all succeed and each step is applied once; stores created by the old
 * create-if-missing DDL are adopted with their records intact; a runtime role with DML rights only (the
 * README's SQL, run as written) serves under LINKGW_RECORDS_MIGRATE=verify once the owner migrated, and is
 * refused clearly before; a schema newer than the code, or a changed step, is refused (exit 78). SQLite too.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { createLogger } from '../../src/log/logger.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { migrationLockKey } from '../../src/records/migrate-postgres.js';
import { checksumOf, CURRENT_VERSION, SchemaError, STEPS } from '../../src/records/migrations.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { killChildren, startChild } from '../helpers/gateway-child.js';
import { createPgSchema, PG_URL, startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'linkgw.js');
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  killChildren();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/**
 * The record tables exactly as linkgw created them before numbered migrations (src/records/schema.ts SCHEMA and
 * schemaFor, as of commit c68e2dd), create-if-missing at every open. `corrects_record_id` came with issue 9;
 * stores created before it lack the column.
 */
const OLD_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS record_logs (
    log_id TEXT PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS access_records (
    log_id TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    provided_at BIGINT,
    requester TEXT NOT NULL,
    provider TEXT NOT NULL,
    procedure TEXT NOT NULL,
    legal_basis_row TEXT NOT NULL,
    item TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    non_disclosable INTEGER NOT NULL,
    persons_commitment BLOB,
    leaf_hash BLOB NOT NULL,
    corrects_record_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (log_id, leaf_index)
  )`,
  `CREATE INDEX IF NOT EXISTS access_records_by_subject
    ON access_records (subject, requested_at DESC, log_id DESC, leaf_index DESC)`,
  `CREATE TABLE IF NOT EXISTS record_subjects (
    subject TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (subject, record_id)
  )`,
  `CREATE TABLE IF NOT EXISTS log_nodes (
    log_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (log_id, level, idx)
  )`,
  `CREATE TABLE IF NOT EXISTS log_checkpoints (
    log_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    root BLOB NOT NULL,
    signed_note TEXT NOT NULL,
    cosignatures TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    kept INTEGER NOT NULL,
    PRIMARY KEY (log_id, size)
  )`,
];

function oldSchemaFor(kind: 'sqlite' | 'postgres', withCorrects: boolean): string[] {
  return OLD_SCHEMA.map((s) => (withCorrects ? s : s.replace(/\n\s*corrects_record_id TEXT NOT NULL DEFAULT '',/, ''))).map((s) => {
    if (kind === 'postgres') return s.replace(/\bBLOB\b/g, 'BYTEA');
    return /TABLE IF NOT EXISTS (record_subjects|log_nodes)/.test(s) ? `${s} WITHOUT ROWID` : s;
  });
}

/** One record as an old linkgw wrote it (its log at size 1, its leaf hash the only tree node). */
const LEAF = Buffer.alloc(32, 7);
const OLD_RECORD = {
  log_id: 'old-replica',
  leaf_index: 0,
  record_id: 'rec-old-1',
  subject: 'subject-key-1',
  requested_at: 1_700_000_000_000,
  provided_at: 1_700_000_000_123,
  requester: 'pension',
  provider: 'tax',
  procedure: 'pension.eligibility',
  legal_basis_row: 'B2-001',
  item: 'income',
  outcome: 1,
  non_disclosable: 0,
  persons_commitment: null,
  leaf_hash: LEAF,
};
const OLD_INSERTS = (p: (i: number) => string) => [
  [`INSERT INTO record_logs (log_id, origin, size, created_at) VALUES (${p(1)}, ${p(2)}, 1, ${p(3)})`, ['old-replica', 'gov.example/linkgw/old-replica', 1_700_000_000_000]],
  [`INSERT INTO access_records (${Object.keys(OLD_RECORD).join(', ')}) VALUES (${Object.keys(OLD_RECORD).map((_, i) => p(i + 1)).join(', ')})`, Object.values(OLD_RECORD)],
] as const;

function expectOldRecord(r: Awaited<ReturnType<PostgresRecordStore['recordById']>>): void {
  expect(r).toMatchObject({
    logId: 'old-replica',
    leafIndex: 0,
    recordId: 'rec-old-1',
    subject: 'subject-key-1',
    requestedAt: 1_700_000_000_000,
    providedAt: 1_700_000_000_123,
    legalBasisRow: 'B2-001',
    outcome: 1,
    nonDisclosable: false,
    personsCommitment: null,
  });
  expect(r!.correctsRecordId).toBeUndefined();
  expect(Buffer.compare(r!.leafHash, LEAF)).toBe(0);
}

/** A log capturing the store's lines. */
function captured(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) });
  return { log: createLogger({ level: 'info', stream }), lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function linkgw(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LINKGW_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, LINKGW_DATA_DIR: tempDir(), LINKGW_LOG_LEVEL: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const jsonLines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function pgSchema() {
  const db = await createPgSchema();
  cleanups.push(db.drop);
  return db;
}

async function migrationRows(schema: string): Promise<{ version: number; name: string; checksum: string; adopted: number }[]> {
  return superuser(async (c) => (await c.query(`SELECT version, name, checksum, adopted FROM ${schema}.schema_migrations ORDER BY version`)).rows);
}

/** The gateway child's exit status and its last words, within `ms`. */
async function exitOf(env: Record<string, string>, ms = 30_000): Promise<{ code: number | null; out: string }> {
  const g = startChild({ LINKGW_DATA_DIR: tempDir(), ...env });
  const timer = setTimeout(() => g.child.kill('SIGKILL'), ms);
  const e = await g.exited;
  clearTimeout(timer);
  return { code: e.code, out: g.log() };
}

describe('PostgreSQL', () => {
  it('four stores and two `linkgw migrate` starting at once on an empty schema all succeed, each step applied once', async () => {
    const db = await pgSchema();
    // The test holds the schema's migration lock until all six wait on it, so they really contend.
    const holder = new pg.Client({ connectionString: PG_URL });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(db.schema)]);
    const key = BigInt.asUintN(64, BigInt(migrationLockKey(db.schema)));
    const logs = Array.from({ length: 4 }, () => captured());
    const stores = logs.map(({ log }) => PostgresRecordStore.open(db.url, { log }));
    const jobs = [0, 1].map(() => linkgw(['migrate', '--json'], { LINKGW_RECORDS_URL: db.url }));
    try {
      await until(
        async () => {
          const r = await holder.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2 AND objsubid = 1", [
            Number(key >> 32n),
            Number(key & 0xffffffffn),
          ]);
          return Number(r.rows[0]!.n) === 6;
        },
        30_000,
      );
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    const opened = await Promise.all(stores);
    for (const s of opened) cleanups.push(() => s.close());
    const done = await Promise.all(jobs);
    for (const j of done) expect(j.status, j.stderr).toBe(0);

    const applied = [
      ...logs.flatMap(({ lines }) => lines().filter((l) => l.msg === 'applied a schema migration to the record store').map((l) => l.version as number)),
      ...done.flatMap((j) => (jsonLines(j.stdout).at(-1)!.applied as number[]) ?? []),
    ].sort();
    expect(applied).toEqual(STEPS.map((s) => s.version));
    expect(await migrationRows(db.schema)).toEqual(STEPS.map((s) => ({ version: s.version, name: s.name, checksum: checksumOf(s, 'postgres'), adopted: 0 })));
    // Every store works on the result: one claims and reads a log.
    const claimed = await opened[0]!.claimLog('r1', 'gov.example/linkgw/r1');
    expect(claimed.size).toBe(0);
    for (const j of done) expect(jsonLines(j.stdout).at(-1)).toMatchObject({ store: 'postgres', version: CURRENT_VERSION, current: true });
  });

  for (const withCorrects of [false, true]) {
    it(`adopts a store created by the old create-if-missing DDL ${withCorrects ? 'with' : 'without'} corrects_record_id, its records intact`, async () => {
      const db = await pgSchema();
      await superuser(async (c) => {
        await c.query(`CREATE SCHEMA ${db.schema}`);
        await c.query(`SET search_path = ${db.schema}`);
        for (const s of oldSchemaFor('postgres', withCorrects)) await c.query(s);
        for (const [sql, values] of OLD_INSERTS((i) => `$${i}`)) await c.query(sql, [...values]);
      });
      const status = await linkgw(['migrate', '--status', '--json'], { LINKGW_RECORDS_URL: db.url });
      expect(status.status).toBe(1);
      expect(jsonLines(status.stdout).slice(0, 2).map((s) => s.state)).toEqual(withCorrects ? ['adoptable', 'adoptable'] : ['adoptable', 'pending']);
      // Under verify, an old store is refused until migrated.
      await expect(PostgresRecordStore.open(db.url, { migrate: 'verify' })).rejects.toThrow(/created before numbered migrations .*run `linkgw migrate`/);

      const { log, lines } = captured();
      const store = await PostgresRecordStore.open(db.url, { log });
      cleanups.push(() => store.close());
      expect(lines().find((l) => l.msg === 'adopted a record store created before numbered migrations')?.steps).toEqual(withCorrects ? [1, 2] : [1]);
      expect((await migrationRows(db.schema)).map((r) => [r.version, r.adopted])).toEqual([[1, 1], [2, withCorrects ? 1 : 0], ...STEPS.filter((s) => s.version > 2).map((s) => [s.version, 0])]);
      expectOldRecord(await store.recordById('rec-old-1'));
      expect(await store.logs()).toMatchObject([{ logId: 'old-replica', size: 1, maxLeafIndex: 0 }]);
      const claimed = await store.claimLog('old-replica', 'gov.example/linkgw/old-replica');
      expect(claimed.size).toBe(1);
      expect(Buffer.compare(claimed.edge[0]!, LEAF)).toBe(0);
    });
  }

  it('refuses a store with some of the old tables but not all, naming what is missing', async () => {
    const db = await pgSchema();
    await superuser(async (c) => {
      await c.query(`CREATE SCHEMA ${db.schema}`);
      await c.query(`SET search_path = ${db.schema}`);
      for (const s of oldSchemaFor('postgres', true).slice(0, 2)) await c.query(s);
    });
    const e = await PostgresRecordStore.open(db.url).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SchemaError);
    expect((e as Error).message).toMatch(/not the layout of any release \(missing: index access_records_by_subject, table record_subjects, table log_nodes, table log_checkpoints\)|missing: .*table record_subjects/);
  });

  it('refuses a schema newer than the code and a changed step: exit 78 with a clear message', async () => {
    const db = await pgSchema();
    expect((await linkgw(['migrate'], { LINKGW_RECORDS_URL: db.url })).status).toBe(0);
    await superuser((c) => c.query(`INSERT INTO ${db.schema}.schema_migrations (version, name, applied_at, checksum) VALUES (99, 'from-a-newer-linkgw', 0, 'x')`));
    const newer = /the record store schema \S+ is at schema version 99 \(from-a-newer-linkgw\), newer than this linkgw knows \(up to \d+\)/;
    await expect(PostgresRecordStore.open(db.url)).rejects.toThrow(newer);
    const served = await exitOf({ LINKGW_RECORDS_URL: db.url });
    expect(served.code).toBe(78);
    expect(served.out).toMatch(new RegExp(`linkgw: ${newer.source}`));
    const m = await linkgw(['migrate'], { LINKGW_RECORDS_URL: db.url });
    expect([m.status, m.stderr]).toEqual([78, expect.stringMatching(newer)]);
    const status = await linkgw(['migrate', '--status', '--json'], { LINKGW_RECORDS_URL: db.url });
    expect(status.status).toBe(1);
    expect(jsonLines(status.stdout).find((s) => s.version === 99)).toMatchObject({ state: 'unknown', name: 'from-a-newer-linkgw' });

    await superuser((c) => c.query(`DELETE FROM ${db.schema}.schema_migrations WHERE version = 99; UPDATE ${db.schema}.schema_migrations SET checksum = 'edited' WHERE version = 2`));
    await expect(PostgresRecordStore.open(db.url)).rejects.toThrow(/schema step 2 \(corrects-record-id\) was applied with checksum edited…, but this linkgw's step 2 has [0-9a-f]{12}…/);
    expect((await exitOf({ LINKGW_RECORDS_URL: db.url })).code).toBe(78);
  });

  it('a runtime role with DML rights only (the README\'s SQL) serves under LINKGW_RECORDS_MIGRATE=verify once the owner migrated', async () => {
    const db = await pgSchema();
    const suffix = db.schema.replace(/^t_/, '');
    const owner = `linkgw_owner_${suffix}`;
    const runtime = `linkgw_runtime_${suffix}`;
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Schema migrations'), readme.indexOf('### Faults'));
    const blocks = [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) =>
      m[1]!.replaceAll('linkgw_owner', owner).replaceAll('linkgw_runtime', runtime).replace(/\brecords\b(?=[.;\s])/g, db.schema),
    );
    expect(blocks).toHaveLength(2);
    cleanups.push(() =>
      superuser(async (c) => {
        await c.query(`DROP SCHEMA IF EXISTS ${db.schema} CASCADE`);
        for (const r of [runtime, owner]) await c.query(`DROP OWNED BY ${r}; DROP ROLE ${r}`).catch(() => undefined);
      }),
    );
    await superuser((c) => c.query(blocks[0]!));
    const asOwner = PG_URL.replace('postgres://postgres@', `postgres://${owner}@`) + `?schema=${db.schema}`;
    const asRuntime = PG_URL.replace('postgres://postgres@', `postgres://${runtime}@`) + `?schema=${db.schema}`;

    // Not migrated yet: the runtime gateway under verify refuses, saying what to run; it could not migrate anyway.
    const early = await exitOf({ LINKGW_RECORDS_URL: asRuntime, LINKGW_RECORDS_MIGRATE: 'verify' });
    expect(early.code).toBe(78);
    expect(early.out).toMatch(/linkgw: the record store schema \S+ has no linkgw tables \(schema version 0, this linkgw needs \d+\): run `linkgw migrate`/);
    // So do the read-only commands under the same setting (not a permission error from DDL they may not run).
    const reading = await linkgw(['records', 'verify'], { LINKGW_RECORDS_URL: asRuntime, LINKGW_RECORDS_MIGRATE: 'verify' });
    expect([reading.status, reading.stderr]).toEqual([78, expect.stringMatching(/run `linkgw migrate`/)]);
    expect(reading.stderr).not.toMatch(/permission denied/);
    const denied = await linkgw(['migrate'], { LINKGW_RECORDS_URL: asRuntime });
    expect([denied.status, denied.stderr]).toEqual([1, expect.stringMatching(/permission denied for schema/)]);

    const migrated = await linkgw(['migrate'], { LINKGW_RECORDS_URL: asOwner });
    expect(migrated.status, migrated.stderr).toBe(0);
    await superuser((c) => c.query(blocks[1]!));

    let h: Harness | undefined;
    try {
      h = await startHarness({ pgUrl: asRuntime, env: { LINKGW_RECORDS_MIGRATE: 'verify', LINKGW_CHECKPOINT_INTERVAL_MS: '100' } });
      const codec = new AgencyCodec(h.gw.keyring);
      const person = population(200, 47).find((n) => {
        const c = checkPersonalNumber(n);
        return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
      })!;
      const issued = await h.client('pension').issueCode(person);
      const q = await h.client('pension').queryInformation({ code: issued.code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
      const dc = (await h.client('disclosure').issueCode(person)).code;
      const seen = await h.client('disclosure').listRecords({ code: dc });
      expect(seen.map((r) => r.recordId)).toEqual(expect.arrayContaining([issued.recordId, q.recordId]));
      // Checkpoints are signed (INSERT, and DELETE of the one a newer replaces) with these rights.
      await until(async () => (await h!.gw.store.latestCheckpoints())[0]?.size === h!.gw.writer.size, 10_000);
      expect(h.logs()).not.toMatch(/"level":"error"/);
    } finally {
      await h?.stop();
    }
    // What the runtime role cannot do: change a record, or the schema.
    const c = new pg.Client({ connectionString: asRuntime.replace(/\?schema=.*$/, ''), options: `-c search_path=${db.schema}` });
    await c.connect();
    try {
      await expect(c.query('DELETE FROM access_records')).rejects.toThrow(/permission denied for table access_records/);
      await expect(c.query('UPDATE access_records SET item = item')).rejects.toThrow(/permission denied for table access_records/);
      await expect(c.query('CREATE TABLE x (a int)')).rejects.toThrow(/permission denied for schema/);
    } finally {
      await c.end();
    }
  });
});

describe('SQLite', () => {
  it('four stores opening one new file at once all succeed, each step applied once', async () => {
    const path = join(tempDir(), 'records.sqlite');
    const applied: number[] = [];
    const stores = await Promise.all(Array.from({ length: 4 }, () => SqliteRecordStore.open(path, { busyTimeoutMs: 10_000, onMigrated: (r) => applied.push(...r.applied.map((a) => a.version)) })));
    for (const s of stores) await s.close();
    expect(applied.sort()).toEqual(STEPS.map((s) => s.version));
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT version, checksum, adopted FROM schema_migrations ORDER BY version').all()).toEqual(STEPS.map((s) => ({ version: s.version, checksum: checksumOf(s, 'sqlite'), adopted: 0 })));
    db.close();
  });

  for (const withCorrects of [false, true]) {
    it(`adopts a store created by the old create-if-missing DDL ${withCorrects ? 'with' : 'without'} corrects_record_id, its records intact`, async () => {
      const path = join(tempDir(), 'records.sqlite');
      const old = new Database(path);
      for (const s of oldSchemaFor('sqlite', withCorrects)) old.exec(s);
      for (const [sql, values] of OLD_INSERTS(() => '?')) old.prepare(sql).run(...values);
      old.close();
      await expect(SqliteRecordStore.open(path, { migrate: 'verify' })).rejects.toThrow(/created before numbered migrations/);
      const m = await linkgw(['migrate', '--json'], { LINKGW_DATA_DIR: join(path, '..') });
      expect(m.status, m.stderr).toBe(0);
      // No keyring read or made (a Kubernetes Job has none), no PKI.
      expect(readdirSync(join(path, '..')).filter((f) => !f.startsWith('records.sqlite'))).toEqual([]);
      expect(jsonLines(m.stdout).at(-1)).toMatchObject({ store: 'sqlite', current: true, adopted: withCorrects ? [1, 2] : [1], applied: STEPS.filter((s) => s.version > (withCorrects ? 2 : 1)).map((s) => s.version) });
      const store = await SqliteRecordStore.open(path, { migrate: 'verify' });
      try {
        expectOldRecord(await store.recordById('rec-old-1'));
        expect((await store.claimLog('old-replica', 'gov.example/linkgw/old-replica')).size).toBe(1);
      } finally {
        await store.close();
      }
    });
  }

  it('refuses a file newer than the code (exit 78), and under verify a file not migrated', async () => {
    const dir = tempDir();
    const path = join(dir, 'records.sqlite');
    const fresh = await SqliteRecordStore.open(path, { migrate: 'verify' }).catch((e: unknown) => e);
    expect(fresh).toBeInstanceOf(SchemaError);
    expect((fresh as Error).message).toMatch(/has no linkgw tables .*run `linkgw migrate`/);
    (await SqliteRecordStore.open(path)).close();
    const db = new Database(path);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (99, 'from-a-newer-linkgw', 0, 'x')").run();
    db.close();
    const e = await SqliteRecordStore.open(path).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SchemaError);
    expect((e as Error).message).toBe(
      `the record store ${path} is at schema version 99 (from-a-newer-linkgw), newer than this linkgw knows (up to ${CURRENT_VERSION}): it was migrated by a newer linkgw. Run that version or a newer one; rolling back the code needs a store at schema version ${CURRENT_VERSION}`,
    );
    const served = await exitOf({ LINKGW_DATA_DIR: dir });
    expect(served.code).toBe(78);
    expect(served.out).toContain(`linkgw: the record store ${path} is at schema version 99`);
  });
});
