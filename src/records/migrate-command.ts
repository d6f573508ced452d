/**
 * `linkgw migrate`: the record store's numbered migrations (migrations.ts) applied, or only shown, without
 * opening the store for writing and without the keyring (a Kubernetes Job has no keyring Secret).
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { inspectPostgres, migratePostgres } from './migrate-postgres.js';
import { inspectSqlite, migrateSqlite } from './migrate-sqlite.js';
import { CURRENT_VERSION, STEPS, type MigrationReport, type MigrationState, type StoreKind } from './migrations.js';
import { PostgresRecordStore, type PostgresStoreOptions } from './postgres-store.js';

export type StepState = 'applied' | 'adopted' | 'pending' | 'adoptable' | 'changed' | 'unknown';

export interface StepStatus {
  readonly version: number;
  readonly name: string;
  /** applied / adopted (recorded); pending; adoptable (its objects exist, not recorded yet); changed (recorded with another checksum); unknown (recorded by a newer linkgw). */
  readonly state: StepState;
  readonly appliedAt: string | null;
}

export interface MigrateOutcome {
  readonly store: StoreKind;
  /** `schema NAME` or the SQLite file. */
  readonly where: string;
  /** The schema version the store is at, and the one this linkgw needs. */
  readonly version: number;
  readonly expected: number;
  /** Pending steps remain, or the store was migrated by a newer linkgw or with other steps. */
  readonly current: boolean;
  readonly steps: readonly StepStatus[];
  /** What this run did (absent for --status). */
  readonly report?: MigrationReport;
}

function statusOf(kind: StoreKind, where: string, state: MigrationState, legacy: number | null, report?: MigrationReport): MigrateOutcome {
  const byVersion = new Map(state.applied.map((a) => [a.version, a]));
  const changed = new Set(state.changed.map((c) => c.step.version));
  const steps: StepStatus[] = [
    ...STEPS.map((s): StepStatus => {
      const a = byVersion.get(s.version);
      const state: StepState = changed.has(s.version) ? 'changed' : a ? (a.adopted ? 'adopted' : 'applied') : legacy !== null && s.version <= legacy ? 'adoptable' : 'pending';
      return { version: s.version, name: s.name, state, appliedAt: a ? new Date(a.appliedAt).toISOString() : null };
    }),
    ...state.unknown.map((u): StepStatus => ({ version: u.version, name: u.name, state: 'unknown', appliedAt: new Date(u.appliedAt).toISOString() })),
  ];
  return {
    store: kind,
    where,
    version: state.version,
    expected: CURRENT_VERSION,
    current: state.pending.length === 0 && state.unknown.length === 0 && state.changed.length === 0,
    steps,
    ...(report ? { report } : {}),
  };
}

export interface MigrateTarget {
  readonly url?: string | undefined;
  readonly sqlitePath: string;
}

/**
 * Applies the pending steps (or, with `statusOnly`, only reads where the store is). Throws a SchemaError for a
 * store that must not be migrated by this linkgw (newer, changed steps, not adoptable), unless `statusOnly`.
 */
export async function migrateStore(target: MigrateTarget, o: { statusOnly: boolean } & Pick<PostgresStoreOptions, 'startWaitMs' | 'signal' | 'log'>): Promise<MigrateOutcome> {
  if (target.url) {
    return PostgresRecordStore.schemaSession(target.url, { ...o, applicationName: 'linkgw/migrate' }, async (c, schema) => {
      const report = o.statusOnly ? undefined : await migratePostgres(c, schema, 'auto');
      const { state, legacy } = await inspectPostgres(c, schema);
      return statusOf('postgres', `schema ${schema}`, state, legacy, report);
    });
  }
  const path = target.sqlitePath;
  if (o.statusOnly && !existsSync(path)) return statusOf('sqlite', path, { kind: 'sqlite', where: path, applied: [], pending: STEPS, unknown: [], changed: [], version: 0 }, null);
  const db = new Database(path, o.statusOnly ? { readonly: true, fileMustExist: true } : {});
  try {
    if (!o.statusOnly) db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    const report = o.statusOnly ? undefined : migrateSqlite(db, 'auto', path);
    const { state, legacy } = inspectSqlite(db, path);
    return statusOf('sqlite', path, state, legacy, report);
  } finally {
    db.close();
  }
}
