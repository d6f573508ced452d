/**
 * Bytes on disk per access record and per person of a bulk-issuance record, in each store (docs/sizing.md).
 * Writes SIZE_RECORDS single-person records (default 20,000) through the real RecordWriter (leaves, tree nodes,
 * checkpoints, as the gateway writes them), measures the store, then SIZE_BATCHES batch records of
 * SIZE_BATCH_PERSONS persons each (default 20 × 1,000) and measures again.
 *
 *   npx tsx bench/record-sizes.ts
 *
 * SQLite: the file after a WAL checkpoint (page_size × page_count), and per table from the dbstat virtual
 * table. PostgreSQL (LINKGW_BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/test; a private schema,
 * dropped at the end): pg_total_relation_size of every table and partition (heap, TOAST, indexes), after
 * VACUUM. Prints one JSON object.
 */
import { runOfSubjects } from '../src/core/persons-run.js';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Outcome, type AccessRecordDraft } from '../src/core/access-record.js';
import { base32Encode } from '../src/core/base32.js';
import { newRecordId } from '../src/core/record-id.js';
import { KeyObjectSigner } from '../src/keys/signer.js';
import { silentLogger } from '../src/log/logger.js';
import { PostgresRecordStore } from '../src/records/postgres-store.js';
import type { RecordStore } from '../src/records/record-store.js';
import { RecordWriter } from '../src/records/record-writer.js';
import { SqliteRecordStore } from '../src/records/sqlite-store.js';

const RECORDS = Number(process.env.SIZE_RECORDS ?? 20_000);
const BATCHES = Number(process.env.SIZE_BATCHES ?? 20);
const BATCH_PERSONS = Number(process.env.SIZE_BATCH_PERSONS ?? 1_000);
const PG_URL = process.env.LINKGW_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const subject = () => base32Encode(randomBytes(16));
const T0 = Date.now() - 3_600_000;

/** A granted query's record, with the field lengths the gateway writes (26-character subject keys). */
function query(i: number): AccessRecordDraft {
  return {
    recordId: newRecordId(),
    subject: subject(),
    requestedAt: T0 + i,
    providedAt: T0 + i + 12,
    requester: 'welfare',
    provider: 'tax',
    procedure: 'welfare.public-assistance',
    legalBasisRow: 'B2-004',
    item: 'income',
    outcome: Outcome.PROVIDED,
    nonDisclosable: false,
  };
}

function bulk(i: number): AccessRecordDraft {
  return { ...query(i), subject: '', provider: 'linkgw', procedure: 'code.issue-bulk', item: 'code', outcome: Outcome.ISSUED, providedAt: T0 + i, persons: runOfSubjects(Array.from({ length: BATCH_PERSONS }, subject)) };
}

async function fill(store: RecordStore, measure: () => Promise<Record<string, number>>) {
  const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'sizes', origin: 'linkgw/records/sizes' });
  const empty = await measure();
  for (let i = 0; i < RECORDS; i += 1000) await writer.appendAll(Array.from({ length: Math.min(1000, RECORDS - i) }, (_, k) => query(i + k)));
  await writer.close();
  const afterRecords = await measure();
  const bulkWriter = new RecordWriter({ store, signer, log: silentLogger, logId: 'sizes', origin: 'linkgw/records/sizes' });
  for (let i = 0; i < BATCHES; i++) await bulkWriter.append(bulk(RECORDS + i));
  await bulkWriter.close();
  // The person index merged from the runs (ADR 0104): a store at rest holds both.
  await store.flushIndex();
  const afterBulk = await measure();
  const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
  return {
    empty,
    afterRecords,
    afterBulk,
    bytesPerRecord: Math.round((total(afterRecords) - total(empty)) / RECORDS),
    bytesPerBulkPerson: Math.round((total(afterBulk) - total(afterRecords)) / (BATCHES * BATCH_PERSONS)),
  };
}

const out: Record<string, unknown> = { records: RECORDS, batches: BATCHES, batchPersons: BATCH_PERSONS, node: process.version };

const dir = mkdtempSync(join(tmpdir(), 'linkgw-sizes-'));
try {
  const path = join(dir, 'records.sqlite');
  const store = await SqliteRecordStore.open(path);
  try {
    out.sqlite = await fill(store, async () => {
      const db = new Database(path);
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
        const rows = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name').all() as { name: string; bytes: number }[];
        return Object.fromEntries(rows.map((r) => [r.name, r.bytes]));
      } finally {
        db.close();
      }
    });
  } finally {
    await store.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const schema = `linkgw_sizes_${process.pid}`;
let store: PostgresRecordStore | undefined;
try {
  store = await PostgresRecordStore.open(`${PG_URL}?schema=${schema}`);
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    out.postgres = await fill(store, async () => {
      await c.query(`SET search_path = ${schema}`);
      await c.query('VACUUM');
      const r = await c.query<{ name: string; bytes: string }>(
        `SELECT COALESCE(parent.relname, t.relname) AS name, SUM(pg_total_relation_size(t.oid)) AS bytes
           FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
           LEFT JOIN pg_inherits i ON i.inhrelid = t.oid LEFT JOIN pg_class parent ON parent.oid = i.inhparent
          WHERE n.nspname = $1 AND t.relkind = 'r' GROUP BY 1`,
        [schema],
      );
      return Object.fromEntries(r.rows.map((x) => [x.name, Number(x.bytes)]));
    });
  } finally {
    await store.close();
    store = undefined;
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await c.end();
  }
} catch (e) {
  out.postgres = { notRun: (e as Error).message };
} finally {
  await store?.close();
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
