/**
 * The record store's schema as numbered steps (ADR 0011): an ordered list of `{ version, name, sql(kind) }`,
 * each applied once, in order, in a transaction of its own, and written down in the store's `schema_migrations`
 * table (version, name, applied_at, the SHA-256 of the step's SQL, and whether the step was adopted rather than
 * run). The same steps serve SQLite and PostgreSQL: `sql(kind)` gives each engine its dialect (BLOB / BYTEA,
 * WITHOUT ROWID). The engines' runners are migrate-sqlite.ts and migrate-postgres.ts; this file holds what
 * they share and decides nothing about connections or locks.
 *
 * Forward only. A released step is never edited (its checksum is checked at every start; a mismatch stops the
 * start): a change to the schema is a new step at the end of STEPS. A step must keep the previous release
 * working on the migrated schema (expand now, contract a release later), because old replicas keep serving
 * while a rolling update runs.
 *
 * Stores created before this table existed (create-if-missing DDL at every open) are adopted: their tables are
 * introspected, and a store with every object of step 1 is recorded as at step 1, or 2 when it has the column
 * of step 2, without running any DDL (`adoptableVersion`).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { PARTITION_STEP_SQL } from './pg-partitions.js';
import { OLD_LAYOUT_MESSAGE } from './schema.js';

export type StoreKind = 'sqlite' | 'postgres';

export interface MigrationStep {
  readonly version: number;
  /** A short kebab-case name, shown by `linkgw migrate --status`. */
  readonly name: string;
  /** The statements of the step, in order, for one engine. */
  sql(kind: StoreKind): readonly string[];
}

const blob = (kind: StoreKind) => (kind === 'postgres' ? 'BYTEA' : 'BLOB');
/** SQLite keeps the narrow tables clustered on their keys. */
const clustered = (kind: StoreKind) => (kind === 'sqlite' ? ' WITHOUT ROWID' : '');

/**
 * Every step, in order. Append only: the next step is version STEPS.length + 1. Never edit or reorder a step
 * that has been released.
 */
export const STEPS: readonly MigrationStep[] = [
  {
    version: 1,
    name: 'transparency-log',
    // The tables of the transparency log as linkgw created them before NOT_RELEASED records (issue 9).
    sql: (kind) => [
      `CREATE TABLE record_logs (
    log_id TEXT PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
  )`,
      `CREATE TABLE access_records (
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
    persons_commitment ${blob(kind)},
    leaf_hash ${blob(kind)} NOT NULL,
    PRIMARY KEY (log_id, leaf_index)
  )`,
      `CREATE INDEX access_records_by_subject
    ON access_records (subject, requested_at DESC, log_id DESC, leaf_index DESC)`,
      // The persons of batch records (bulk issuance): one narrow row each instead of one record each.
      `CREATE TABLE record_subjects (
    subject TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (subject, record_id)
  )${clustered(kind)}`,
      `CREATE TABLE log_nodes (
    log_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash ${blob(kind)} NOT NULL,
    PRIMARY KEY (log_id, level, idx)
  )${clustered(kind)}`,
      `CREATE TABLE log_checkpoints (
    log_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    root ${blob(kind)} NOT NULL,
    signed_note TEXT NOT NULL,
    cosignatures TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    kept INTEGER NOT NULL,
    PRIMARY KEY (log_id, size)
  )`,
    ],
  },
  {
    version: 2,
    name: 'corrects-record-id',
    // NOT_RELEASED records name the record whose answer was never released (issue 9).
    sql: () => ["ALTER TABLE access_records ADD COLUMN corrects_record_id TEXT NOT NULL DEFAULT ''"],
  },
  {
    version: 3,
    name: 'log-purges',
    // One row per purge of a log's oldest records, leaves [0, below_leaf) (issue 12 item 6, ADR 0103). Hashes
    // and times only: `frontier` is the compact range at below_leaf (32-byte hashes, largest subtree first),
    // `signed_note` the purge statement signed by the log's key (src/core/purge-note.ts).
    sql: (kind) => [
      `CREATE TABLE log_purges (
    log_id TEXT NOT NULL,
    below_leaf BIGINT NOT NULL,
    root ${blob(kind)} NOT NULL,
    frontier ${blob(kind)} NOT NULL,
    signed_note TEXT NOT NULL,
    purged_at BIGINT NOT NULL,
    before_time BIGINT NOT NULL,
    PRIMARY KEY (log_id, below_leaf)
  )`,
    ],
  },
  {
    version: 4,
    name: 'monthly-partitions',
    // PostgreSQL keeps access records in monthly partitions, so that a purge drops months (ADR 0012); the
    // months ahead are made after the steps (pg-partitions.ts ensurePartitions). SQLite stays one table.
    sql: (kind) => (kind === 'postgres' ? [PARTITION_STEP_SQL] : []),
  },
  {
    version: 5,
    name: 'person-runs',
    // A batch record's persons as one sorted run written with the record (src/core/persons-run.ts), and how far
    // each log's runs have been merged into the person index (record_subjects) behind the commits: runs of
    // leaves below `below_leaf` are in the index, the others are read from their runs (ADR 0104). The runs are
    // the truth; the index is rebuilt from them.
    sql: (kind) => [
      `CREATE TABLE person_runs (
    log_id TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    record_id TEXT NOT NULL,
    persons ${blob(kind)} NOT NULL,
    PRIMARY KEY (log_id, leaf_index)
  )`,
      `CREATE TABLE person_index_frontier (
    log_id TEXT PRIMARY KEY,
    below_leaf BIGINT NOT NULL
  )`,
      // Random keys do not compress: PostgreSQL would try (pglz) on every insert of a 160 KB run for nothing.
      ...(kind === 'postgres' ? ['ALTER TABLE person_runs ALTER COLUMN persons SET STORAGE EXTERNAL'] : []),
    ],
  },
];

/** The version a store must be at for this code. */
export const CURRENT_VERSION = STEPS.length === 0 ? 0 : STEPS[STEPS.length - 1]!.version;

/** The table of applied steps, created (if missing) before any step runs. */
export function migrationsTableSql(): string {
  return `CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    checksum TEXT NOT NULL,
    adopted INTEGER NOT NULL DEFAULT 0
  )`;
}

/**
 * The SHA-256 (hex) of a step's statements for one engine, whitespace runs folded to one space (re-indenting a
 * step does not change it; changing a word does).
 */
export function checksumOf(step: MigrationStep, kind: StoreKind): string {
  const text = step.sql(kind).map((s) => s.replace(/\s+/g, ' ').trim()).join(';\n');
  return createHash('sha256').update(text).digest('hex');
}

/** A row of schema_migrations. */
export interface AppliedStep {
  readonly version: number;
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly appliedAt: number;
  readonly checksum: string;
  /** Recorded by adoption of a store created before schema_migrations (no DDL ran). */
  readonly adopted: boolean;
}

/** The configured behaviour at open: apply pending steps, or only check that none is pending. */
export type MigrateMode = 'auto' | 'verify';

export const SCHEMA_ERROR = 'LINKGW_SCHEMA';

/**
 * The store's schema does not fit this code (newer, changed, not migrated, not adoptable). Restarting does
 * not help, so the start stops with exit status 78 (configuration), as for an invalid setting.
 */
export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly code = SCHEMA_ERROR;
  readonly exitCode = 78;
}

/** What the store's schema_migrations says against STEPS. */
export interface MigrationState {
  readonly kind: StoreKind;
  /** Where the store is (schema name, file path), for messages. */
  readonly where: string;
  readonly applied: readonly AppliedStep[];
  /** Known steps not applied yet, in order. */
  readonly pending: readonly MigrationStep[];
  /** Applied steps this code does not know: the store was migrated by a newer linkgw. */
  readonly unknown: readonly AppliedStep[];
  /** Applied steps whose recorded checksum is not this code's. */
  readonly changed: readonly { readonly step: MigrationStep; readonly recorded: string; readonly expected: string }[];
  /** The version the store is at (its highest applied step), 0 for none. */
  readonly version: number;
}

export function stateOf(kind: StoreKind, where: string, applied: readonly AppliedStep[]): MigrationState {
  const byVersion = new Map(applied.map((a) => [a.version, a]));
  const known = new Set(STEPS.map((s) => s.version));
  const changed = STEPS.flatMap((step) => {
    const a = byVersion.get(step.version);
    const expected = checksumOf(step, kind);
    return a && a.checksum !== expected ? [{ step, recorded: a.checksum, expected }] : [];
  });
  return {
    kind,
    where,
    applied: [...applied].sort((a, b) => a.version - b.version),
    pending: STEPS.filter((s) => !byVersion.has(s.version)),
    unknown: applied.filter((a) => !known.has(a.version)).sort((a, b) => a.version - b.version),
    changed,
    version: applied.reduce((m, a) => Math.max(m, a.version), 0),
  };
}

/**
 * Refuses a store this code must not write, whatever the mode: one migrated by a newer linkgw, or one whose
 * applied steps differ from this code's.
 */
export function refuseForeign(s: MigrationState): void {
  if (s.unknown.length) {
    const newest = s.unknown[s.unknown.length - 1]!;
    throw new SchemaError(
      `the record store ${s.where} is at schema version ${newest.version} (${newest.name}), newer than this linkgw knows (up to ${CURRENT_VERSION}): it was migrated by a newer linkgw. Run that version or a newer one; rolling back the code needs a store at schema version ${CURRENT_VERSION}`,
    );
  }
  if (s.changed.length) {
    const c = s.changed[0]!;
    throw new SchemaError(
      `the record store ${s.where}: schema step ${c.step.version} (${c.step.name}) was applied with checksum ${c.recorded.slice(0, 12)}…, but this linkgw's step ${c.step.version} has ${c.expected.slice(0, 12)}…: the step was changed after it was applied (a modified build?). Run the linkgw that migrated this store`,
    );
  }
}

/** In `verify` mode: refuses a store with steps pending, saying how to apply them. */
export function refuseBehind(s: MigrationState, legacy: number | null): void {
  if (!s.pending.length) return;
  const how = 'run `linkgw migrate` with a role that may change the schema (LINKGW_RECORDS_MIGRATE=verify: this gateway applies no migration)';
  if (legacy !== null)
    throw new SchemaError(`the record store ${s.where} was created before numbered migrations (its tables are at step ${legacy}) and has no schema_migrations yet: ${how}`);
  if (s.version === 0) throw new SchemaError(`the record store ${s.where} has no linkgw tables (schema version 0, this linkgw needs ${CURRENT_VERSION}): ${how}`);
  throw new SchemaError(
    `the record store ${s.where} is at schema version ${s.version}, this linkgw needs ${CURRENT_VERSION} (pending: ${s.pending.map((p) => `${p.version} ${p.name}`).join(', ')}): ${how}`,
  );
}

/** The tables and columns of a store, as introspected (table name → column names), and its index names. */
export interface Layout {
  readonly tables: ReadonlyMap<string, ReadonlySet<string>>;
  readonly indexes: ReadonlySet<string>;
}

/** Every object of step 1, as the create-if-missing DDL of earlier linkgw made them. */
const STEP1_TABLES: Readonly<Record<string, readonly string[]>> = {
  record_logs: ['log_id', 'origin', 'size', 'created_at'],
  access_records: ['log_id', 'leaf_index', 'record_id', 'subject', 'requested_at', 'provided_at', 'requester', 'provider', 'procedure', 'legal_basis_row', 'item', 'outcome', 'non_disclosable', 'persons_commitment', 'leaf_hash'],
  record_subjects: ['subject', 'record_id'],
  log_nodes: ['log_id', 'level', 'idx', 'hash'],
  log_checkpoints: ['log_id', 'size', 'root', 'signed_note', 'cosignatures', 'created_at', 'kept'],
};
const STEP1_INDEXES = ['access_records_by_subject'];

/** Tables of linkgw that adoption looks for. */
export const LEGACY_TABLES = Object.keys(STEP1_TABLES);

/**
 * For a store without schema_migrations: the step its tables are at (0 when it has none of linkgw's tables,
 * 1 with every object of step 1, 2 with the column of step 2 as well). A store of the hash-chain era, or with
 * some of the tables but not all, is refused: adopting it would record steps whose objects are not there.
 */
export function adoptableVersion(layout: Layout, where: string): number {
  const present = LEGACY_TABLES.filter((t) => layout.tables.has(t));
  if (present.length === 0) return 0;
  if (layout.tables.get('access_records')?.has('chain_id')) throw new SchemaError(OLD_LAYOUT_MESSAGE.replace('this record store', `the record store ${where}`));
  const missing = [
    ...Object.entries(STEP1_TABLES).flatMap(([t, cols]) => (layout.tables.has(t) ? cols.filter((c) => !layout.tables.get(t)!.has(c)).map((c) => `column ${t}.${c}`) : [`table ${t}`])),
    ...STEP1_INDEXES.filter((i) => !layout.indexes.has(i)).map((i) => `index ${i}`),
  ];
  if (missing.length)
    throw new SchemaError(
      `the record store ${where} has tables of linkgw but not the layout of any release (missing: ${missing.join(', ')}), and no schema_migrations: it cannot be adopted. Restore it from a backup, or move it aside and start an empty schema`,
    );
  return layout.tables.get('access_records')!.has('corrects_record_id') ? 2 : 1;
}

/** What opening did to the schema, for the log. */
export interface MigrationReport {
  readonly adopted: readonly number[];
  readonly applied: readonly { readonly version: number; readonly name: string; readonly ms: number }[];
  readonly version: number;
  /** PostgreSQL: the monthly partitions made ahead by this run. */
  readonly partitionsMade?: readonly string[];
  /** PostgreSQL: the first month with no partition of its own (ms), when it is less than two months ahead. */
  readonly partitionsEndSoon?: number;
}

/** Logs what opening a store did to its schema (nothing, usually). */
export function logMigrations(log: Logger | undefined, where: string, r: MigrationReport): void {
  if (r.adopted.length) log?.info('adopted a record store created before numbered migrations', { store: where, steps: r.adopted });
  for (const a of r.applied) log?.info('applied a schema migration to the record store', { store: where, version: a.version, name: a.name, ms: a.ms });
  if (r.partitionsMade?.length) log?.info('made monthly partitions of the access records', { store: where, partitions: r.partitionsMade });
  if (r.partitionsEndSoon !== undefined)
    log?.warn('the access records have monthly partitions only until this month: run `linkgw migrate` (its monthly CronJob); records of later months go to the default partition, which a purge cannot drop', {
      store: where,
      until: new Date(r.partitionsEndSoon).toISOString().slice(0, 7),
    });
}
