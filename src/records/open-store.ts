/** Picks the record store from configuration: PostgreSQL for a postgres:// URL, otherwise SQLite at a path. */
import type { Logger } from '../log/logger.js';
import type { RecordStore } from './record-store.js';
import { logMigrations, type MigrateMode } from './migrations.js';
import { PostgresRecordStore } from './postgres-store.js';
import { SqliteRecordStore, type StoreObserver } from './sqlite-store.js';

export interface StoreOptions {
  /** Told the time of each operation inside the store's own thread (SQLite). */
  readonly observer?: StoreObserver;
  /** Where the store reports what an operator should know at start (e.g. weak durability settings). */
  readonly log?: Logger;
  /** Client-side deadline of each store operation, ms (LINKGW_RECORD_STORE_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** PostgreSQL: how long to wait at open for a server that does not accept connections yet, ms. */
  readonly startWaitMs?: number;
  /** PostgreSQL: the sessions' application_name (`linkgw/<replica>` for a gateway). */
  readonly applicationName?: string;
  /** Stops waiting at open. */
  readonly signal?: AbortSignal;
  /** LINKGW_RECORDS_MIGRATE: `auto` applies pending schema migrations at open, `verify` refuses if any is pending. */
  readonly migrate?: MigrateMode;
  /**
   * SQLite: what a missing file means (`if-new`, the default: a new store unless logs were written there before;
   * `never`: refuse; `always`: create) and whether to open it read-only (sqlite-store.ts).
   */
  readonly create?: 'if-new' | 'never' | 'always';
  readonly readonly?: boolean;
}

export async function openRecordStore(target: { url?: string | undefined; sqlitePath: string }, o: StoreOptions = {}): Promise<RecordStore> {
  if (target.url && /^postgres(ql)?:\/\//.test(target.url)) {
    const { observer: _observer, ...pg } = o;
    return PostgresRecordStore.open(target.url, pg);
  }
  if (target.url) throw new Error('LINKGW_RECORDS_URL: only postgres:// URLs are supported; leave it unset for the embedded SQLite store');
  return SqliteRecordStore.open(target.sqlitePath, {
    ...(o.observer ? { observer: o.observer } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.migrate ? { migrate: o.migrate } : {}),
    ...(o.create ? { create: o.create } : {}),
    ...(o.readonly ? { readonly: true } : {}),
    onMigrated: (r) => logMigrations(o.log, target.sqlitePath, r),
  });
}
