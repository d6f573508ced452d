/** Picks the record store from configuration: PostgreSQL for a postgres:// URL, otherwise SQLite at a path. */
import type { Logger } from '../log/logger.js';
import type { RecordStore } from './record-store.js';
import { PostgresRecordStore } from './postgres-store.js';
import { SqliteRecordStore, type StoreObserver } from './sqlite-store.js';

export interface StoreOptions {
  /** Told the time of each operation inside the store's own thread (SQLite). */
  readonly observer?: StoreObserver;
  /** Where the store reports what an operator should know at start (e.g. weak durability settings). */
  readonly log?: Logger;
}

export async function openRecordStore(target: { url?: string | undefined; sqlitePath: string }, o: StoreOptions = {}): Promise<RecordStore> {
  if (target.url && /^postgres(ql)?:\/\//.test(target.url)) return PostgresRecordStore.open(target.url, o.log ? { log: o.log } : {});
  if (target.url) throw new Error('LINKGW_RECORDS_URL: only postgres:// URLs are supported; leave it unset for the embedded SQLite store');
  return SqliteRecordStore.open(target.sqlitePath, o.observer ? { observer: o.observer } : {});
}
