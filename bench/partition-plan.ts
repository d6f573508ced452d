/**
 * The disclosure lookup on a large partitioned PostgreSQL store: fills a private schema with PLAN_ROWS access
 * records (default 20 million) over 7 years of monthly partitions and PLAN_PERSON_ROWS batch-record persons
 * (default 5 million), then prints EXPLAIN (ANALYZE, BUFFERS) of the query ListAccessRecords runs, for a person
 * with records, so that anyone can see it stays index scans (one probe per month) and not a scan of the table.
 *
 *   npx tsx bench/partition-plan.ts > bench/results/partition-plan.txt
 *
 * LINKGW_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test); the schema is dropped at the end.
 */
import pg from 'pg';
import { migratePostgres } from '../src/records/migrate-postgres.js';
import { coveredUntil, ensurePartitions, listPartitions } from '../src/records/pg-partitions.js';
import { listBySubjectQuery } from '../src/records/postgres-store.js';

const url = process.env.LINKGW_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const rows = Number(process.env.PLAN_ROWS ?? 20_000_000);
const personRows = Number(process.env.PLAN_PERSON_ROWS ?? 5_000_000);
const persons = Number(process.env.PLAN_PERSONS ?? 2_000_000);
const schema = `linkgw_plan_${process.pid}`;
const YEAR = 365.25 * 24 * 3600 * 1000;

const c = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
await c.connect();
const t0 = Date.now();
const say = (m: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${m}\n`);
try {
  // The store as `linkgw migrate` makes it; then, as if it had run for seven years, one partition a month from
  // seven years ago (a fresh store's first partition takes everything before its first month).
  await migratePostgres(c, schema, 'auto');
  for (const p of await listPartitions(c)) if (!p.isDefault) await c.query(`DROP TABLE ${p.name}`);
  const end = Date.now();
  const start = end - 7 * YEAR;
  await c.query(`CREATE TABLE access_records_before PARTITION OF access_records FOR VALUES FROM (MINVALUE) TO (${start - (start % 1000)})`);
  await ensurePartitions(c, start, Math.ceil((end - start) / (YEAR / 12)) + 12);
  if ((coveredUntil(await listPartitions(c)) ?? 0) < end) throw new Error('partitions do not reach today');
  say(`${(await listPartitions(c)).length} partitions`);
  await c.query('SET maintenance_work_mem = \'512MB\'');
  // Records spread evenly over the 7 years; subject keys of `persons` people (md5 stands in for the AES key).
  const chunk = 1_000_000;
  for (let from = 0; from < rows; from += chunk) {
    const to = Math.min(rows, from + chunk) - 1;
    await c.query(
      `INSERT INTO access_records (log_id, leaf_index, record_id, subject, requested_at, provided_at, requester, provider, procedure,
         legal_basis_row, item, outcome, non_disclosable, persons_commitment, leaf_hash, corrects_record_id)
       SELECT 'log-' || (i % 4), i / 4, md5('r' || i), md5('p' || (i % $3::bigint)), ($1::bigint + (i::float8 / $4::bigint) * ($2::bigint - $1::bigint))::bigint, NULL,
              'pension', 'tax', 'pension.eligibility', '1', 'income', 1, 0, NULL, decode(md5('h' || i), 'hex'), ''
         FROM generate_series($5::bigint, $6::bigint) AS i`,
      [start, end, persons, rows, from, to],
    );
    say(`${to + 1} records`);
  }
  for (let from = 0; from < personRows; from += chunk) {
    const to = Math.min(personRows, from + chunk) - 1;
    await c.query(
      `INSERT INTO record_subjects (subject, record_id) SELECT md5('p' || ((i * 7919) % $1::bigint)), md5('r' || (i / 10000)) FROM generate_series($2::bigint, $3::bigint) AS i
       ON CONFLICT DO NOTHING`,
      [persons, from, to],
    );
    say(`${to + 1} person rows`);
  }
  await c.query('ANALYZE');
  const subject = (await c.query<{ s: string }>(`SELECT md5('p' || 12345) AS s`)).rows[0]!.s;
  const { text, values } = listBySubjectQuery({ subject, from: null, to: null, after: null, limit: 50 });
  const plan = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${text}`, values);
  const lines = plan.rows.map((r) => r['QUERY PLAN']);
  // Partitions of months to come are empty; the planner rightly reads an empty table without its index.
  const empty = new Set<string>();
  for (const p of await listPartitions(c)) if (!(await c.query(`SELECT 1 FROM ${p.name} LIMIT 1`)).rows.length) empty.add(p.name);
  const onRows = (l: string) => !empty.has(/Seq Scan on (\S+)/.exec(l)?.[1] ?? '');
  const summary = (ls: string[]) => {
    const count = (re: RegExp, keep: (l: string) => boolean = () => true) => ls.filter((l) => re.test(l) && keep(l)).length;
    const time = ls.filter((l) => /^(Planning|Execution) Time/.test(l)).join(', ');
    return `plan: ${count(/Index (Only )?Scan/)} index scans, ${count(/Seq Scan/, onRows)} sequential scans of partitions with rows (${count(/Seq Scan/)} in all, the others of empty months to come), ${count(/Bitmap Heap Scan/)} bitmap scans; ${time}`;
  };
  // Planning a query over ~100 partitions costs more than running it: the same query as a named prepared
  // statement (planned once per connection, generic plan) against plain, 30 times each, median wall time.
  const time = async (named: boolean) => {
    const ms: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t = process.hrtime.bigint();
      await c.query(named ? { name: 'list-by-subject', text, values } : { text, values });
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return ms.sort((a, b) => a - b)[15]!.toFixed(2);
  };
  const plain = await time(false);
  await c.query("SET plan_cache_mode = 'force_generic_plan'");
  const prepared = await time(true);
  const sizes = await c.query<{ n: string; bytes: string }>(`SELECT (SELECT count(*) FROM access_records) AS n, pg_total_relation_size('access_records_default') AS bytes`);
  process.stdout.write(
    `# ListAccessRecords on PostgreSQL: ${sizes.rows[0]!.n} access records in ${(await listPartitions(c)).length} partitions, ${personRows} person rows\n` +
      `# npx tsx bench/partition-plan.ts (PLAN_ROWS=${rows} PLAN_PERSON_ROWS=${personRows} PLAN_PERSONS=${persons}), ${new Date().toISOString()}\n` +
      `# ${summary(lines)}\n` +
      `# median of 30 runs: ${plain} ms planned each time, ${prepared} ms as a prepared statement with a generic plan\n` +
      `# PostgreSQL ${(await c.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version}\n\n` +
      lines.join('\n') +
      '\n',
  );
  const seq = lines.filter((l) => /Seq Scan on access_records/.test(l) && onRows(l));
  say(seq.length ? `sequential scans in the plan: ${seq.length}` : 'no sequential scan of access_records in the plan');
} finally {
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await c.end();
}
