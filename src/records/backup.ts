/**
 * `linkgw records backup FILE`: a copy of the SQLite record store, consistent while the gateway writes, and
 * verified before it is kept.
 *
 * The copy is made with SQLite's online backup API (better-sqlite3's `backup()`, sqlite3_backup_step) from a
 * connection of its own. All pages go in one step, so the whole copy is read in one read transaction: one state
 * of the store, taken while the gateway's writer keeps committing (the store is in WAL mode, where readers do
 * not block the writer). Copying in small steps instead would restart the copy at every commit of the gateway.
 *
 * The copy is written next to FILE (FILE.partial, mode 0600: the store holds who asked about whom), checked
 * (`PRAGMA integrity_check`, then every log verified as `linkgw records verify` does, with the keyring's public
 * keys), synced, and only then renamed to FILE. A copy that does not verify is removed, and the command fails.
 */
import type { KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteRecordStore } from './sqlite-store.js';
import { verifyStore, type LogReport } from './verify-store.js';

export interface BackupResult {
  readonly file: string;
  readonly bytes: number;
  readonly pages: number;
  readonly logs: number;
  readonly records: number;
  /** Leaves not yet covered by a checkpoint in the copy (normal: a running gateway signs every interval). */
  readonly unsigned: number;
}

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

/** Copies the store at `source` to `target` (see the file comment). */
export async function backupSqliteStore(source: string, target: string, sealPublicKeys: ReadonlyMap<string, KeyObject>): Promise<BackupResult> {
  if (!existsSync(source)) throw new BackupError(`no record store at ${source}`);
  if (existsSync(target)) throw new BackupError(`${target} exists already: give a new file name`);
  const partial = `${target}.partial`;
  for (const f of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(f, { force: true });
  // Made first with mode 0600: the backup writes into the file that is there.
  closeSync(openSync(partial, 'w', 0o600));
  let pages = 0;
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const done = await db.backup(partial, { progress: () => 0x7fffffff });
    pages = done.totalPages;
  } catch (e) {
    rmSync(partial, { force: true });
    throw new BackupError(`the backup of ${source} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    db.close();
  }
  let reports: LogReport[];
  try {
    reports = await checkCopy(partial, sealPublicKeys);
  } catch (e) {
    for (const f of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(f, { force: true });
    throw e;
  }
  const fd = openSync(partial, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, target);
  const dir = openSync(dirname(target), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return {
    file: target,
    bytes: statSync(target).size,
    pages,
    logs: reports.length,
    records: reports.reduce((n, r) => n + r.records, 0),
    unsigned: reports.reduce((n, r) => n + r.unsigned, 0),
  };
}

/** The copy is a sound SQLite file, at the current schema, and every log in it verifies. */
async function checkCopy(file: string, sealPublicKeys: ReadonlyMap<string, KeyObject>): Promise<LogReport[]> {
  const db = new Database(file, { fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[];
    if (integrity.length !== 1 || integrity[0]!.integrity_check !== 'ok') throw new BackupError(`the copy is damaged (integrity_check: ${integrity.slice(0, 3).map((r) => r.integrity_check).join('; ')})`);
  } finally {
    db.close();
  }
  const store = await SqliteRecordStore.open(file, { migrate: 'verify' });
  try {
    const reports = await verifyStore(store, sealPublicKeys);
    const bad = reports.find((r) => r.problem);
    if (bad) throw new BackupError(`the copy does not verify: log ${bad.logId}: ${bad.problem!.kind} at leaf ${bad.problem!.leafIndex ?? '?'}: ${bad.problem!.detail}; run linkgw records verify on the store`);
    return reports;
  } finally {
    await store.close();
  }
}
