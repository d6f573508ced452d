/**
 * Record stores of each kind for tests, with a way to reach their tables from outside (as someone tampering
 * with them would): SQLite through its own connection, PostgreSQL through a client on the store's schema.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Outcome, type AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { createPgSchema, PG_URL, tempDir, type StoreKind } from './gateway-harness.js';

export interface StoreFixture {
  readonly store: RecordStore;
  exec(sql: string): Promise<Record<string, unknown>[]>;
  /** A hash as a literal of this store's SQL. */
  blob(b: Buffer): string;
  close(): Promise<void>;
}

export async function openTestStore(kind: StoreKind, o: { personIndex?: 'behind-commits' | 'on-flush' } = {}): Promise<StoreFixture> {
  if (kind === 'sqlite') {
    const path = join(tempDir(), 'records.sqlite');
    const store = await SqliteRecordStore.open(path, o);
    return {
      store,
      exec: async (sql) => {
        const db = new Database(path);
        try {
          const st = db.prepare(sql);
          return st.reader ? (st.all() as Record<string, unknown>[]) : (st.run(), []);
        } finally {
          db.close();
        }
      },
      blob: (b) => `X'${b.toString('hex')}'`,
      close: () => store.close(),
    };
  }
  const s = await createPgSchema();
  const store = await PostgresRecordStore.open(s.url, o);
  return {
    store,
    exec: async (sql) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`SET search_path = ${s.schema}`);
        return (await c.query(sql)).rows;
      } finally {
        await c.end();
      }
    },
    blob: (b) => `'\\x${b.toString('hex')}'::bytea`,
    close: async () => {
      await store.close();
      await s.drop();
    },
  };
}

/** A record draft requested at `requestedAt`. */
export function recordDraft(requestedAt: number, over: Partial<AccessRecordDraft> = {}): AccessRecordDraft {
  return {
    recordId: base32Encode(randomBytes(15)),
    subject: base32Encode(randomBytes(16)),
    requestedAt,
    providedAt: requestedAt + 100,
    requester: 'pension',
    provider: 'tax',
    procedure: 'pension.eligibility',
    legalBasisRow: 'B2-001',
    item: 'income',
    outcome: Outcome.PROVIDED,
    nonDisclosable: false,
    ...over,
  };
}
