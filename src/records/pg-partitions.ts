/**
 * PostgreSQL keeps `access_records` partitioned by month of `requested_at` (UTC), so that retention drops
 * whole months instead of deleting rows one by one (docs/adr/0012-record-partitions.md).
 *
 * - The partitioning migration turns the table into a partitioned one; the table as it was becomes the
 *   partition of everything before the month after the migration (`access_records_until_…`), so an existing
 *   store keeps its rows without copying them.
 * - Monthly partitions are made ahead of time (`ensurePartitions`: at start when the gateway migrates, and by
 *   `linkgw migrate`, which a monthly CronJob or every deploy runs). A DEFAULT partition catches a record of a
 *   month not made yet, so a late maintenance job never fails an exchange; a month whose rows already sit in
 *   the default partition is not made later (its rows stay there and are purged row by row).
 * - Retention drops a month only when every record in it lies in the purged prefix of its log
 *   (`droppablePartitions`); anything else is deleted by leaf range, as on SQLite.
 *
 * No unique index can span partitions without the partition key: the primary key is (log_id, leaf_index,
 * requested_at) and record_id has a plain index. The single writer of each log (its advisory lock and the
 * compare-and-set on the log's size) is what keeps leaf indexes unique; record ids are 120 random bits.
 */

/** What these functions need of a connection (a pg.Client or PoolClient). */
export interface SqlClient {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export const PARTITIONED_TABLE = 'access_records';
/** The partition that catches records of a month that has no partition yet. */
export const DEFAULT_PARTITION = 'access_records_default';
/** Months made ahead of the current one. */
export const MONTHS_AHEAD = 12;

/** The first millisecond (UTC) of the month `ms` falls in, shifted by `months`. */
export function monthStart(ms: number, months = 0): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1);
}

/** `access_records_y2026m12` for the month starting at `start`. */
export function partitionName(start: number): string {
  const d = new Date(start);
  return `${PARTITIONED_TABLE}_y${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * The migration step (PostgreSQL only, migrations.ts step 4) that partitions an existing access_records table
 * by month: the table and its indexes are renamed, a partitioned table with the same columns takes the name,
 * and the old table is attached as the partition of everything before the month after the migration runs
 * (PostgreSQL checks its rows lie below, one scan). Its own keys and indexes give way to the partitioned
 * table's, built on it as it is attached (one sort each); its unique record_id goes, a promise the other
 * partitions would not keep. One DO block, so that its text (and the step's checksum) does not depend on the
 * day it runs.
 */
export const PARTITION_STEP_SQL = `DO $partition$
DECLARE
  next_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month';
  boundary bigint := (extract(epoch FROM next_month) * 1000)::bigint;
  old text := 'access_records_until_' || to_char(next_month, '"y"YYYY"m"MM');
BEGIN
  EXECUTE format('ALTER TABLE access_records RENAME TO %I', old);
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT access_records_pkey', old);
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT access_records_record_id_key', old);
  DROP INDEX access_records_by_subject;
  EXECUTE format('CREATE TABLE access_records (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (requested_at)', old);
  ALTER TABLE access_records ADD PRIMARY KEY (log_id, leaf_index, requested_at);
  CREATE INDEX access_records_by_subject ON access_records (subject, requested_at DESC, log_id DESC, leaf_index DESC);
  CREATE INDEX access_records_by_record_id ON access_records (record_id);
  EXECUTE format('ALTER TABLE access_records ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%s)', old, boundary);
  CREATE TABLE access_records_default PARTITION OF access_records DEFAULT;
END
$partition$`;

export interface Partition {
  readonly name: string;
  /** Range [from, to) of requested_at; null for MINVALUE / MAXVALUE; both null for the default partition. */
  readonly from: number | null;
  readonly to: number | null;
  readonly isDefault: boolean;
}

/** Parses pg_get_expr(relpartbound): `FOR VALUES FROM ('1') TO ('2')`, `FROM (MINVALUE) TO ('2')`, `DEFAULT`. */
export function parseBound(name: string, bound: string): Partition {
  if (bound.trim() === 'DEFAULT') return { name, from: null, to: null, isDefault: true };
  const m = /FROM \((.+?)\) TO \((.+?)\)/.exec(bound);
  if (!m) throw new Error(`partition ${name}: bound not understood: ${bound}`);
  const value = (v: string) => (/^(MINVALUE|MAXVALUE)$/.test(v) ? null : Number(v.replace(/'/g, '')));
  return { name, from: value(m[1]!), to: value(m[2]!), isDefault: false };
}

/** The partitions of access_records in the current schema, by range; empty when the table is not partitioned. */
export async function listPartitions(c: SqlClient): Promise<Partition[]> {
  const r = await c.query<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = to_regclass('${PARTITIONED_TABLE}')`,
  );
  return r.rows.map((x) => parseBound(x.name, x.bound)).sort((a, b) => (a.isDefault ? Infinity : (a.from ?? -Infinity)) - (b.isDefault ? Infinity : (b.from ?? -Infinity)));
}

/** Whether access_records in the current schema is partitioned. */
export async function isPartitioned(c: SqlClient): Promise<boolean> {
  const r = await c.query<{ p: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('${PARTITIONED_TABLE}')) AS p`);
  return r.rows[0]?.p === true;
}

export interface EnsureResult {
  readonly created: readonly string[];
  /** Months left to the default partition because it already holds records of them. */
  readonly inDefault: readonly string[];
}

/** The first month not covered by a ranged partition (null when the table is not partitioned). */
export function coveredUntil(parts: readonly Partition[]): number | null {
  return parts.reduce<number | null>((m, p) => (p.isDefault || p.to === null ? m : Math.max(m ?? -Infinity, p.to)), null);
}

/**
 * Makes the monthly partitions from the end of the last ranged one (or the current month) to `monthsAhead`
 * months after `now`. Idempotent; run under the migration lock (several replicas at once).
 */
export async function ensurePartitions(c: SqlClient, now = Date.now(), monthsAhead = MONTHS_AHEAD): Promise<EnsureResult> {
  const parts = await listPartitions(c);
  const last = coveredUntil(parts);
  const hasDefault = parts.some((p) => p.isDefault);
  const created: string[] = [];
  const inDefault: string[] = [];
  const end = monthStart(now, monthsAhead + 1);
  for (let start = last ?? monthStart(now); start < end; start = monthStart(start, 1)) {
    const to = monthStart(start, 1);
    const name = partitionName(start);
    if (hasDefault) {
      const r = await c.query<{ n: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${DEFAULT_PARTITION} WHERE requested_at >= $1 AND requested_at < $2) AS n`, [start, to]);
      if (r.rows[0]?.n) {
        inDefault.push(name);
        // A later month cannot be made either without leaving a hole below it that the default would take.
        break;
      }
    }
    await c.query(`CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ${PARTITIONED_TABLE} FOR VALUES FROM (${start}) TO (${to})`);
    created.push(name);
  }
  return { created, inDefault };
}

/**
 * The partitions a purge may drop: ranged ones that end at or before `before`, and whose every record lies
 * below its log's purge point (`below`: log id → first leaf kept). A partition holding a record of a log not
 * in `below`, or at or above its purge point, is kept (its purged rows are deleted by leaf range instead).
 */
export async function droppablePartitions(c: SqlClient, before: number, below: ReadonlyMap<string, number>): Promise<Partition[]> {
  const out: Partition[] = [];
  for (const p of await listPartitions(c)) {
    if (p.isDefault || p.to === null || p.to > before) continue;
    const r = await c.query<{ log_id: string; top: string }>(`SELECT log_id, MAX(leaf_index) AS top FROM ${p.name} GROUP BY log_id`);
    // An empty month stays: dropping it would send a late record of that month to the default partition.
    if (r.rows.length && r.rows.every((x) => below.has(x.log_id) && Number(x.top) < below.get(x.log_id)!)) out.push(p);
  }
  return out;
}
