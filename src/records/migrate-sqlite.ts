/**
 * The numbered migrations (migrations.ts) on a SQLite store, synchronously on a better-sqlite3 connection: in
 * the store's thread at open, or in `linkgw migrate`. Each step runs in a BEGIN IMMEDIATE transaction of its
 * own (SQLite's DDL is transactional), which holds the file's write lock: a second process that migrates the
 * same file at the same time waits for it (busy_timeout), then finds the step recorded and skips it.
 */
import type Database from 'better-sqlite3';
import {
  adoptableVersion,
  checksumOf,
  migrationsTableSql,
  refuseBehind,
  refuseForeign,
  STEPS,
  stateOf,
  type AppliedStep,
  type Layout,
  type MigrateMode,
  type MigrationReport,
  type MigrationState,
} from './migrations.js';

type Row = { version: number; name: string; applied_at: number; checksum: string; adopted: number };

function hasTable(db: Database.Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function applied(db: Database.Database): AppliedStep[] {
  if (!hasTable(db, 'schema_migrations')) return [];
  return (db.prepare('SELECT version, name, applied_at, checksum, adopted FROM schema_migrations ORDER BY version').all() as Row[]).map((r) => ({
    version: r.version,
    name: r.name,
    appliedAt: r.applied_at,
    checksum: r.checksum,
    adopted: r.adopted === 1,
  }));
}

function layout(db: Database.Database): Layout {
  const tables = new Map<string, Set<string>>();
  for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
    tables.set(name, new Set((db.prepare('SELECT name FROM pragma_table_info(?)').all(name) as { name: string }[]).map((c) => c.name)));
  const indexes = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").all() as { name: string }[]).map((r) => r.name));
  return { tables, indexes };
}

/** The store's migration state, and for a store without schema_migrations the step its tables are at. */
export function inspectSqlite(db: Database.Database, where: string): { state: MigrationState; legacy: number | null } {
  const rows = applied(db);
  const legacy = rows.length === 0 ? adoptableVersion(layout(db), where) : null;
  return { state: stateOf('sqlite', where, rows), legacy: legacy === 0 ? null : legacy };
}

const record = (db: Database.Database, version: number, name: string, checksum: string, adopted: boolean) =>
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at, checksum, adopted) VALUES (?, ?, ?, ?, ?)').run(version, name, Date.now(), checksum, adopted ? 1 : 0);

/**
 * Brings the store to CURRENT_VERSION (`auto`), or checks that it is there (`verify`); refuses, whatever the
 * mode, a store migrated by a newer linkgw or whose applied steps differ from this code's.
 */
export function migrateSqlite(db: Database.Database, mode: MigrateMode, where: string): MigrationReport {
  const { state, legacy } = inspectSqlite(db, where);
  refuseForeign(state);
  if (mode === 'verify') refuseBehind(state, legacy);
  if (!state.pending.length) return { adopted: [], applied: [], version: state.version };
  const report: { adopted: number[]; applied: { version: number; name: string; ms: number }[] } = { adopted: [], applied: [] };
  db.transaction(() => {
    db.exec(migrationsTableSql());
    if (applied(db).length) return;
    const at = adoptableVersion(layout(db), where);
    for (const step of STEPS.filter((s) => s.version <= at)) (record(db, step.version, step.name, checksumOf(step, 'sqlite'), true), report.adopted.push(step.version));
  }).immediate();
  for (const step of STEPS) {
    const started = performance.now();
    const ran = db
      .transaction(() => {
        // Read again under the write lock: another process may have applied it meanwhile.
        if (db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(step.version) !== undefined) return false;
        for (const s of step.sql('sqlite')) db.exec(s);
        record(db, step.version, step.name, checksumOf(step, 'sqlite'), false);
        return true;
      })
      .immediate();
    if (ran) report.applied.push({ version: step.version, name: step.name, ms: Math.round(performance.now() - started) });
  }
  const after = stateOf('sqlite', where, applied(db));
  refuseForeign(after);
  return { ...report, version: after.version };
}
