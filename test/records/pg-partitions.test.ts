/**
 * Issue 12 item 6: PostgreSQL keeps access records in monthly partitions, so that retention drops months.
 * Real PostgreSQL, a schema of the test's own.
 */
import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { purgeRecords } from '../../src/records/purge.js';
import { droppablePartitions, ensurePartitions, isPartitioned, listPartitions, monthStart, partitionName } from '../../src/records/pg-partitions.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { issuanceDraft } from '../helpers/drafts.js';
import { createPgSchema } from '../helpers/gateway-harness.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function schema() {
  const s = await createPgSchema();
  const c = new pg.Client({ connectionString: s.url.replace(/\?schema=.*/, ''), options: `-c search_path=${s.schema}` });
  await c.connect();
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${s.schema}`);
  cleanups.push(async () => {
    await c.end();
    await s.drop();
  });
  return { ...s, c };
}

async function writeRecords(store: PostgresRecordStore, drafts: ReturnType<typeof issuanceDraft>[]) {
  const writer = new RecordWriter({ store, signer, log: silentLogger });
  for (const d of drafts) await writer.append(d);
  await writer.close();
  return writer.logId;
}

const DAY = 86_400_000;

describe('monthly partitions of the PostgreSQL record store', () => {
  it('migration step 4 partitions a store made before them, keeping its records, its proofs and its lookups by person', async () => {
    const t = await schema();
    // Records are written through a store, then the table is put back into the layout of earlier versions
    // (one plain table with its keys), the rows as they were.
    const store = await PostgresRecordStore.open(t.url);
    const drafts = Array.from({ length: 20 }, () => issuanceDraft());
    const logId = await writeRecords(store, drafts);
    await store.close();
    expect(await isPartitioned(t.c)).toBe(true);
    // Back to one plain table with the same rows (what a store of the earlier layout holds), then reopen.
    await t.c.query(`CREATE TABLE plain (LIKE access_records INCLUDING DEFAULTS); INSERT INTO plain SELECT * FROM access_records; DROP TABLE access_records CASCADE; ALTER TABLE plain RENAME TO access_records`);
    await t.c.query(`ALTER TABLE access_records ADD PRIMARY KEY (log_id, leaf_index), ADD UNIQUE (record_id)`);
    await t.c.query(`CREATE INDEX access_records_by_subject ON access_records (subject, requested_at DESC, log_id DESC, leaf_index DESC)`);
    await t.c.query(`DELETE FROM schema_migrations WHERE version = 4`);
    expect(await isPartitioned(t.c)).toBe(false);
    const again = await PostgresRecordStore.open(t.url);
    cleanups.push(() => again.close());
    expect(await isPartitioned(t.c)).toBe(true);
    const parts = await listPartitions(t.c);
    const until = parts.find((p) => p.name.startsWith('access_records_until_'))!;
    expect(until).toMatchObject({ from: null, to: monthStart(Date.now(), 1) });
    const held = await t.c.query<{ n: string }>(`SELECT count(*) AS n FROM ${until.name}`);
    expect(Number(held.rows[0]!.n)).toBe(20);
    const report = (await verifyStore(again, keys)).find((r) => r.logId === logId);
    expect(report).toMatchObject({ records: 20, problem: null });
    const listed = await again.listBySubject({ subject: drafts[7]!.subject, from: null, to: null, after: null, limit: 10 });
    expect(listed.map((r) => r.recordId)).toEqual([drafts[7]!.recordId]);
    // And a new record goes on into the same log.
    const more = await writeRecords(again, [issuanceDraft()]);
    expect((await verifyStore(again, keys)).find((r) => r.logId === more)).toMatchObject({ problem: null });
  });

  it('are made a year ahead; a record of a month not made yet lands in the default partition and is still found', async () => {
    const t = await schema();
    const store = await PostgresRecordStore.open(t.url);
    cleanups.push(() => store.close());
    const names = (await listPartitions(t.c)).map((p) => p.name);
    for (let m = 1; m <= 12; m++) expect(names).toContain(partitionName(monthStart(Date.now(), m)));
    expect(names).toContain('access_records_default');
    expect(await ensurePartitions(t.c)).toEqual({ created: [], inDefault: [] });
    // A record dated three years ahead (a clock gone wrong): stored, in the default partition, and listed.
    const far = issuanceDraft({ requestedAt: Date.now() + 3 * 365 * DAY });
    await writeRecords(store, [far]);
    const where = await t.c.query<{ p: string }>(`SELECT tableoid::regclass::text AS p FROM access_records WHERE record_id = $1`, [far.recordId]);
    expect(where.rows[0]!.p).toBe('access_records_default');
    expect((await store.listBySubject({ subject: far.subject, from: null, to: null, after: null, limit: 5 })).map((r) => r.recordId)).toEqual([far.recordId]);
    // Making partitions up to that month stops at it: its record stays where it is, nothing is lost.
    const r = await ensurePartitions(t.c, far.requestedAt, 0);
    expect(r.inDefault).toEqual([partitionName(monthStart(far.requestedAt))]);
    expect(r.created.length).toBeGreaterThan(0);
    const still = await t.c.query(`SELECT 1 FROM access_records_default WHERE record_id = $1`, [far.recordId]);
    expect(still.rows.length).toBe(1);
  });

  it('several gateways opening one empty schema at once all succeed, and partition it once', async () => {
    const t = await schema();
    const opened = await Promise.allSettled(Array.from({ length: 4 }, () => PostgresRecordStore.open(t.url)));
    for (const o of opened) {
      expect(o.status === 'rejected' ? String(o.reason) : o.status).toBe('fulfilled');
      if (o.status === 'fulfilled') cleanups.push(() => o.value.close());
    }
    const until = (await listPartitions(t.c)).filter((p) => p.name.startsWith('access_records_until_'));
    expect(until.length).toBe(1);
  });

  it('a month may be dropped by a purge only when every record in it is below its log purge point', async () => {
    const t = await schema();
    const store = await PostgresRecordStore.open(t.url);
    cleanups.push(() => store.close());
    // Records of two months ahead: leaves 0-1 of month m+1, leaf 2 of month m+2.
    const m1 = monthStart(Date.now(), 1) + DAY;
    const m2 = monthStart(Date.now(), 2) + DAY;
    const logId = await writeRecords(store, [issuanceDraft({ requestedAt: m1 }), issuanceDraft({ requestedAt: m1 + 1 }), issuanceDraft({ requestedAt: m2 })]);
    const name = (ms: number) => partitionName(monthStart(ms));
    const drop = async (before: number, below: number) => (await droppablePartitions(t.c, before, new Map([[logId, below]]))).map((p) => p.name);
    // Before the end of month m+1, leaves below 2 purged: m+1 is droppable (and the empty months before it).
    expect(await drop(monthStart(m1, 1), 2)).toContain(name(m1));
    // Only leaf 0 purged: month m+1 still holds leaf 1, so it stays.
    expect(await drop(monthStart(m1, 1), 1)).not.toContain(name(m1));
    // A month ending after `before` is never dropped, whatever was purged.
    expect(await drop(monthStart(m1, 1), 3)).not.toContain(name(m2));
    // A log not purged at all keeps its months.
    expect((await droppablePartitions(t.c, monthStart(m1, 1), new Map())).map((p) => p.name)).not.toContain(name(m1));
  });

  it('a purge drops the months it empties whole, deletes the rest row by row, and verify passes after it', async () => {
    const t = await schema();
    const store = await PostgresRecordStore.open(t.url);
    cleanups.push(() => store.close());
    // As if the store had run for a year: monthly partitions from a year ago instead of one for all the past.
    for (const p of await listPartitions(t.c)) if (!p.isDefault) await t.c.query(`DROP TABLE ${p.name}`);
    const yearAgo = monthStart(Date.now(), -12);
    await t.c.query(`CREATE TABLE access_records_before PARTITION OF access_records FOR VALUES FROM (MINVALUE) TO (${yearAgo})`);
    await ensurePartitions(t.c, yearAgo, 24);
    // Two logs; 16 records each in months -6 and -5 (log A) and -6 (log B), then young ones in both.
    const at = (m: number, i: number) => monthStart(Date.now(), m) + DAY + i * 1000;
    const write = async (logId: string, times: number[]) => {
      const w = new RecordWriter({ store, signer, log: silentLogger, logId, origin: `linkgw/records/${logId}` });
      const drafts = times.map((x) => issuanceDraft({ requestedAt: x }));
      for (const d of drafts) await w.append(d);
      await w.close();
      return drafts;
    };
    const a = await write('log-a', [...Array.from({ length: 8 }, (_, i) => at(-6, i)), ...Array.from({ length: 8 }, (_, i) => at(-5, i)), ...Array.from({ length: 8 }, (_, i) => at(-1, i))]);
    const b = await write('log-b', [...Array.from({ length: 8 }, (_, i) => at(-6, i + 100)), ...Array.from({ length: 8 }, (_, i) => at(-1, i + 100))]);
    let finished: { partitionsDropped: readonly string[]; recordsDeleted: number } | undefined;
    const before = monthStart(Date.now(), -2);
    const done = await purgeRecords(store, signer, keys, { before, finished: (f) => void (finished = f) });
    expect(done.map((r) => [r.logId, r.belowLeaf, r.records, r.purged])).toEqual([
      ['log-a', 16, 16, true],
      ['log-b', 8, 8, true],
    ]);
    // Months -6 and -5 held only purged records: dropped whole; nothing was left to delete row by row.
    expect(finished?.partitionsDropped).toEqual(expect.arrayContaining([partitionName(monthStart(Date.now(), -6)), partitionName(monthStart(Date.now(), -5))]));
    expect(finished?.recordsDeleted).toBe(0);
    const names = (await listPartitions(t.c)).map((p) => p.name);
    expect(names).not.toContain(partitionName(monthStart(Date.now(), -6)));
    expect(names).toContain(partitionName(monthStart(Date.now(), -1)));
    expect(Number((await t.c.query<{ n: string }>('SELECT count(*) AS n FROM access_records')).rows[0]!.n)).toBe(16);
    expect(await store.listBySubject({ subject: a[3]!.subject, from: null, to: null, after: null, limit: 5 })).toEqual([]);
    expect((await store.listBySubject({ subject: b[12]!.subject, from: null, to: null, after: null, limit: 5 })).map((r) => r.recordId)).toEqual([b[12]!.recordId]);
    for (const r of await verifyStore(store, keys)) expect(r).toMatchObject({ problem: null });
    // A record deleted by hand after the purge is still caught.
    await t.c.query('DELETE FROM access_records WHERE log_id = $1 AND leaf_index = 17', ['log-a']);
    expect((await verifyStore(store, keys)).find((r) => r.logId === 'log-a')!.problem).not.toBeNull();
  });
});
