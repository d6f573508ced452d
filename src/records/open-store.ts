/** Picks the record store from configuration: PostgreSQL for a postgres:// URL, otherwise SQLite at a path. */
import type { RecordStore } from './record-store.js';
import { PostgresRecordStore } from './postgres-store.js';
import { SqliteRecordStore } from './sqlite-store.js';

export async function openRecordStore(target: { url?: string | undefined; sqlitePath: string }): Promise<RecordStore> {
  if (target.url && /^postgres(ql)?:\/\//.test(target.url)) return PostgresRecordStore.open(target.url);
  if (target.url) throw new Error('LINKGW_RECORDS_URL: only postgres:// URLs are supported; leave it unset for the embedded SQLite store');
  return SqliteRecordStore.open(target.sqlitePath);
}
