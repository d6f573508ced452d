/**
 * The numbered migrations (migrations.ts) on a PostgreSQL store, in the schema of its URL. Every transaction
 * that changes the schema first takes a transaction-scoped advisory lock keyed on the schema's name
 * (pg_advisory_xact_lock), then reads schema_migrations again: several gateways (or `linkgw migrate` Jobs)
 * starting together on an empty schema queue on the lock, the first creates the schema and applies each step
 * in a transaction of its own (PostgreSQL's DDL is transactional: a step is there whole or not at all), and
 * the others find the steps recorded and go on. A store that is current is checked without the lock, so the
 * usual start takes no lock and runs no DDL (what LINKGW_RECORDS_MIGRATE=verify relies on: a runtime role with
 * DML rights only).
 *
 * Introspection reads pg_catalog, not information_schema (which shows only the columns the current role has a
 * privilege on).
 */
import { createHash } from 'node:crypto';
import type { BoundedClient } from './pg-connections.js';
import { coveredUntil, ensurePartitions, isPartitioned, listPartitions, monthStart, MONTHS_AHEAD } from './pg-partitions.js';
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

/** The advisory lock key of a schema's migrations (PostgreSQL's lock keys are bigint and database-wide). */
export function migrationLockKey(schema: string): string {
  return createHash('sha256').update(`linkgw-migrate\n${schema}`).digest().readBigInt64BE(0).toString();
}

async function schemaExists(c: BoundedClient, schema: string): Promise<boolean> {
  return ((await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount ?? 0) > 0;
}

async function hasMigrationsTable(c: BoundedClient, schema: string): Promise<boolean> {
  const r = await c.query("SELECT 1 FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace WHERE n.nspname = $1 AND k.relname = 'schema_migrations' AND k.relkind IN ('r', 'p')", [schema]);
  return (r.rowCount ?? 0) > 0;
}

async function applied(c: BoundedClient, schema: string): Promise<AppliedStep[]> {
  if (!(await hasMigrationsTable(c, schema))) return [];
  const r = await c.query<{ version: number; name: string; applied_at: string; checksum: string; adopted: number }>(
    `SELECT version, name, applied_at, checksum, adopted FROM ${schema}.schema_migrations ORDER BY version`,
  );
  return r.rows.map((x) => ({ version: x.version, name: x.name, appliedAt: Number(x.applied_at), checksum: x.checksum, adopted: x.adopted === 1 }));
}

async function layout(c: BoundedClient, schema: string): Promise<Layout> {
  const cols = await c.query<{ table: string; column: string }>(
    `SELECT k.relname AS table, a.attname AS column FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace n ON n.oid = k.relnamespace
     WHERE n.nspname = $1 AND k.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
    [schema],
  );
  const tables = new Map<string, Set<string>>();
  for (const r of cols.rows) (tables.get(r.table) ?? tables.set(r.table, new Set()).get(r.table)!).add(r.column);
  const idx = await c.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE schemaname = $1', [schema]);
  return { tables, indexes: new Set(idx.rows.map((r) => r.indexname)) };
}

/** The store's migration state, and for a store without schema_migrations the step its tables are at. */
export async function inspectPostgres(c: BoundedClient, schema: string): Promise<{ state: MigrationState; legacy: number | null }> {
  const where = `schema ${schema}`;
  const rows = (await schemaExists(c, schema)) ? await applied(c, schema) : [];
  const legacy = rows.length === 0 ? adoptableVersion(await layout(c, schema), where) : null;
  return { state: stateOf('postgres', where, rows), legacy: legacy === 0 ? null : legacy };
}

/** One transaction under the schema's migration lock. */
async function locked<T>(c: BoundedClient, schema: string, body: () => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(schema)]);
    const out = await body();
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

const record = (c: BoundedClient, schema: string, version: number, name: string, adopted: boolean) =>
  c.query(`INSERT INTO ${schema}.schema_migrations (version, name, applied_at, checksum, adopted) VALUES ($1, $2, $3, $4, $5)`, [
    version,
    name,
    Date.now(),
    checksumOf(STEPS.find((s) => s.version === version)!, 'postgres'),
    adopted ? 1 : 0,
  ]);

/**
 * Brings the schema to CURRENT_VERSION (`auto`), or checks that it is there (`verify`); refuses, whatever the
 * mode, a store migrated by a newer linkgw or whose applied steps differ from this code's. `schema` is a plain
 * identifier (checked by the caller); the session's search_path is that schema.
 */
export async function migratePostgres(c: BoundedClient, schema: string, mode: MigrateMode): Promise<MigrationReport> {
  const { state, legacy } = await inspectPostgres(c, schema);
  refuseForeign(state);
  if (mode === 'verify') refuseBehind(state, legacy);
  if (!state.pending.length) return { adopted: [], applied: [], version: state.version };
  const where = `schema ${schema}`;
  const adopted = await locked(c, schema, async () => {
    // CREATE SCHEMA IF NOT EXISTS would still need CREATE on the database: a schema made by the DBA is kept.
    if (!(await schemaExists(c, schema))) await c.query(`CREATE SCHEMA ${schema}`);
    await c.query(migrationsTableSql().replace('schema_migrations', `${schema}.schema_migrations`));
    if ((await applied(c, schema)).length) return [];
    const at = adoptableVersion(await layout(c, schema), where);
    const steps = STEPS.filter((s) => s.version <= at);
    for (const s of steps) await record(c, schema, s.version, s.name, true);
    return steps.map((s) => s.version);
  });
  const ran: { version: number; name: string; ms: number }[] = [];
  for (const step of STEPS) {
    const started = performance.now();
    const did = await locked(c, schema, async () => {
      // Read again under the lock: another gateway may have applied it while this one waited.
      const done = await c.query(`SELECT 1 FROM ${schema}.schema_migrations WHERE version = $1`, [step.version]);
      if (done.rowCount) return false;
      for (const s of step.sql('postgres')) await c.query(s);
      await record(c, schema, step.version, step.name, false);
      return true;
    });
    if (did) ran.push({ version: step.version, name: step.name, ms: Math.round(performance.now() - started) });
  }
  const after = stateOf('postgres', where, await applied(c, schema));
  refuseForeign(after);
  return { adopted, applied: ran, version: after.version, ...(await monthsAhead(c, schema, mode)) };
}

/**
 * The monthly partitions ahead (pg-partitions.ts): made, under the migration lock, in `auto` mode when fewer
 * than MONTHS_AHEAD exist; under `verify` (a role without DDL rights) only checked, and reported when less
 * than two months remain.
 */
async function monthsAhead(c: BoundedClient, schema: string, mode: MigrateMode): Promise<Pick<MigrationReport, 'partitionsMade' | 'partitionsEndSoon'>> {
  if (!(await isPartitioned(c))) return {};
  const until = coveredUntil(await listPartitions(c));
  const now = Date.now();
  if (mode === 'auto' && (until === null || until < monthStart(now, MONTHS_AHEAD + 1))) {
    const made = await locked(c, schema, () => ensurePartitions(c, now));
    return made.created.length ? { partitionsMade: made.created } : {};
  }
  return until === null || until < monthStart(now, 2) ? { partitionsEndSoon: until ?? monthStart(now) } : {};
}
