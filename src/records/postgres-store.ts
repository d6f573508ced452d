/**
 * The PostgreSQL record store (LINKGW_RECORDS_URL=postgres://…). Tables live in the schema named by the URL's
 * `schema` parameter (default `public`), so tests and tenants can be kept apart.
 *
 * A log's writer holds a session advisory lock on a connection of its own, which does nothing else, and appends
 * through a second connection (pg-connections.ts: every query has a client-side deadline, every connection an
 * error listener). An append connection that fails or misses a deadline is thrown away and the next claim or
 * append opens a fresh one, so a hung server process (SIGSTOPped, or behind a black-holed path) holds up one
 * commit, not the log: the lock stays with this store (its session is only idle), and every append is a
 * compare-and-set on the log's size, so a commit on the fresh connection can never fork the log whatever the
 * hung one does later. If the lock's own connection is lost, so is the lock, and the next append must claim the
 * log again. An append is one statement (the size compare-and-set, the records, their persons and the
 * completed nodes, through unnest()) inside one transaction: one WAL flush per batch, whatever its size.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log/logger.js';
import { PgConnections, type BoundedClient, type PgSession } from './pg-connections.js';
import { describeStoreError, notCommitted } from './store-errors.js';
import { Outcome, type LoggedRecord } from '../core/access-record.js';
import { rangeNodes, rootOfLeafHashes, type NodeId } from '../core/merkle.js';
import { subjectsCommitment } from '../core/record-leaf.js';
import { runLength, runSubjects, subjectKeyBytes } from '../core/persons-run.js';
import { mergePersons, storedRunCommitment } from './run-persons.js';
import {
  LOG_CONFLICT,
  LOG_LOCKED,
  storeError,
  type ClaimedLog,
  type ExchangeQuery,
  type FinishedPurge,
  type LogAppend,
  type NewPurge,
  type PurgeResult,
  type RecordPersons,
  type RecordQuery,
  type SnapshotReader,
  type RecordStore,
  type StoredPersons,
} from './record-store.js';
import { leavesUnder, LOWEST_STORED_LEVEL, RECORD_COLUMNS, recordToValues, rowToCheckpoint, rowToPurge, rowToRecord, type CheckpointRow, type LogInfo, type PurgeRow, type RecordRow, type StoredCheckpoint } from './schema.js';
import { migratePostgres, migrationLockKey } from './migrate-postgres.js';
import { droppablePartitions, monthStart } from './pg-partitions.js';
import { logMigrations, type MigrateMode, type MigrationReport } from './migrations.js';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const CHECKPOINT_SELECT = 'SELECT c.*, l.origin FROM log_checkpoints c JOIN record_logs l ON l.log_id = c.log_id';

/**
 * The advisory lock key of a log: 64 bits of a hash of its schema and id (PostgreSQL's lock keys are bigint and
 * database-wide, so logs of the same name in two schemas must not share one).
 */
function lockKey(schema: string, logId: string): string {
  return createHash('sha256').update(`linkgw-log\n${schema}\n${logId}`).digest().readBigInt64BE(0).toString();
}

interface Writer {
  /** Holds the log's session advisory lock and runs nothing else, so a hung append connection keeps it. */
  readonly lock: PgSession;
  /** Claims' reads and appends; replaced by a fresh connection once it fails or misses a deadline. */
  appender: PgSession | null;
}

export interface PostgresStoreOptions {
  /** Merge persons runs into the index behind the commits (default), or only on `flushIndex` (tests). */
  readonly personIndex?: 'behind-commits' | 'on-flush';
  /** Client-side deadline of each store operation (a commit as a whole, a read), ms (default 3000). */
  readonly timeoutMs?: number;
  /** Server-side statement_timeout of the store's sessions, ms (default: the operation deadline). */
  readonly statementTimeoutMs?: number;
  /** Pooled connections for reads (default 4). */
  readonly max?: number;
  /** `application_name` of the store's sessions (the gateway's: `linkgw/<replica>`). */
  readonly applicationName?: string;
  /** At open, how long to wait for a server that does not accept connections yet, ms (default 0: fail at once). */
  readonly startWaitMs?: number;
  /** Stops waiting at open (a SIGTERM during start). */
  readonly signal?: AbortSignal;
  readonly log?: Logger;
  /** `auto` (default): apply pending schema migrations; `verify`: refuse to open unless none is pending. */
  readonly migrate?: MigrateMode;
}

/** Connection failures worth waiting out at start: the server is down, starting, or full, not misconfigured. */
function worthWaiting(e: unknown): boolean {
  if (!(e instanceof pg.DatabaseError)) return true;
  const code = e.code ?? '';
  return code === '57P03' || code === '53300' || code.startsWith('08') || code === '57P01' || code === '57P02';
}

/**
 * Persons in runs a log may have waiting for the index (ADR 0104). A lookup scans each waiting run on the server
 * (`position` in its bytes), so the backlog bounds the lookup's cost: 1,000,000 persons is 16 MB of runs.
 */
const PG_INDEX_BACKLOG = 1_000_000;

export class PostgresRecordStore implements RecordStore {
  readonly kind = 'postgres' as const;
  readonly #c: PgConnections;
  readonly #schema: string;
  readonly #writers = new Map<string, Writer>();
  /** Rows written since the planner's statistics were last refreshed, and rows known then. */
  #sinceAnalyze = 0;
  #rowsAtAnalyze = 0;
  #analyzing: Promise<void> | undefined;
  /** Persons in runs not merged into the index yet, for each log this store writes (ADR 0104). */
  readonly #unmerged = new Map<string, number>();
  /** The index merge running for a log, if any. */
  readonly #indexing = new Map<string, Promise<void>>();
  #closing = false;

  /**
   * True when the server's default was synchronous_commit = off when the store opened, which would let a
   * commit return before its WAL is flushed (logged as a warning). Every batch checks the setting itself and
   * turns it back on for its own transaction, since a record must be durable before anything is released.
   */
  readonly syncCommitForced: boolean;

  readonly #indexBehind: boolean;

  private constructor(connections: PgConnections, schema: string, syncCommitForced: boolean, indexBehind: boolean) {
    this.#indexBehind = indexBehind;
    this.#c = connections;
    this.#schema = schema;
    this.syncCommitForced = syncCommitForced;
  }

  /**
   * Keeps the planner's statistics current while the tables grow. With the statistics of a near-empty table
   * (autovacuum runs at most once a minute), PostgreSQL plans the disclosure query as a scan of every record:
   * 43 ms a call at 24,000 records, against 0.9 ms once analysed. Runs beside the request path, one at a time.
   */
  #maybeAnalyze(rows: number): void {
    this.#sinceAnalyze += rows;
    if (this.#analyzing || this.#sinceAnalyze < Math.max(1000, this.#rowsAtAnalyze * 0.2)) return;
    const total = this.#rowsAtAnalyze + this.#sinceAnalyze;
    this.#sinceAnalyze = 0;
    // ANALYZE reads a sample of each table: allow it a minute, not the request path's deadline.
    this.#analyzing = this.#c
      .withClient(async (c) => {
        await c.query("BEGIN; SET LOCAL statement_timeout = '60s'; ANALYZE access_records, record_subjects; COMMIT");
      }, 65_000)
      .then(
        () => {
          this.#rowsAtAnalyze = total;
        },
        () => undefined,
      )
      .finally(() => {
        this.#analyzing = undefined;
      });
  }

  /**
   * Merges a log's runs into the person index behind its commits, a chunk at a time in leaf order (each chunk one
   * transaction: its persons inserted in key order, the frontier moved past it), until none waits. One merge per
   * log at a time; a failure leaves the runs where they are (the truth; lookups read them) and is tried again
   * after the next commit.
   */
  #index(logId: string, flushing = false): Promise<void> {
    if (!flushing && !this.#indexBehind) return Promise.resolve();
    const running = this.#indexing.get(logId);
    if (running || this.#closing) return running ?? Promise.resolve();
    const run = (async () => {
      while (!this.#closing && (this.#unmerged.get(logId) ?? 0) > 0) {
        const merged = await this.#c.withClient(async (c) => {
          await c.query('BEGIN');
          try {
            const below = await c.query<{ below: string }>('SELECT COALESCE((SELECT below_leaf FROM person_index_frontier WHERE log_id = $1), 0) AS below', [logId]);
            const from = Number(below.rows[0]!.below);
            const page = await c.query<{ leaf_index: string; record_id: string; persons: Buffer }>(
              'SELECT leaf_index, record_id, persons FROM person_runs WHERE log_id = $1 AND leaf_index >= $2 ORDER BY leaf_index LIMIT 4',
              [logId, from],
            );
            if (page.rows.length === 0) {
              await c.query('ROLLBACK');
              return -1;
            }
            const subjects: string[] = [];
            const records: string[] = [];
            let persons = 0;
            for (const r of page.rows) {
              for (const subject of runSubjects(r.persons)) subjects.push(subject), records.push(r.record_id);
              persons += runLength(r.persons);
            }
            await c.query('INSERT INTO record_subjects (subject, record_id) SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING', [subjects, records]);
            await c.query(
              'INSERT INTO person_index_frontier (log_id, below_leaf) VALUES ($1, $2) ON CONFLICT (log_id) DO UPDATE SET below_leaf = GREATEST(person_index_frontier.below_leaf, excluded.below_leaf)',
              [logId, Number(page.rows[page.rows.length - 1]!.leaf_index) + 1],
            );
            await c.query('COMMIT');
            return persons;
          } catch (e) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw e;
          }
        }, 60_000);
        if (merged < 0) this.#unmerged.set(logId, 0);
        else this.#unmerged.set(logId, Math.max(0, (this.#unmerged.get(logId) ?? 0) - merged));
        this.#maybeAnalyze(Math.max(0, merged));
      }
    })()
      .catch(() => undefined)
      .finally(() => this.#indexing.delete(logId));
    this.#indexing.set(logId, run);
    return run;
  }

  /** The store's connections for a URL (its `schema` parameter taken out, as the sessions' search_path). */
  static #connections(url: string, opts: PostgresStoreOptions): { connections: PgConnections; schema: string; target: string; timeoutMs: number } {
    const u = new URL(url);
    const schema = u.searchParams.get('schema') ?? 'public';
    if (!IDENT.test(schema)) throw new Error('records URL: schema must be a plain lower-case identifier');
    u.searchParams.delete('schema');
    // Server options given in the URL (`options=-c name=value …`) are kept; the search path is the store's.
    const extra = u.searchParams.get('options') ?? '';
    u.searchParams.delete('options');
    const timeoutMs = opts.timeoutMs ?? 3000;
    const clientConfig: pg.ClientConfig = {
      connectionString: u.toString(),
      application_name: opts.applicationName ?? 'linkgw',
      statement_timeout: opts.statementTimeoutMs ?? timeoutMs,
      // A transaction left open by a lost client (its COMMIT never arrived) releases the log's row lock.
      idle_in_transaction_session_timeout: Math.max(2 * timeoutMs, 5000),
      // Finds a path that died without a FIN or RST while the connection was idle.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // Named statements (the lookups by person) keep one generic plan per connection: planning a query over
      // a hundred monthly partitions takes longer than running it (bench/partition-plan.ts).
      options: `${extra} -c search_path=${schema} -c plan_cache_mode=force_generic_plan`.trim(),
    };
    const target = `${u.hostname}:${u.port || 5432}${u.pathname}`;
    return { connections: new PgConnections({ client: clientConfig, timeoutMs, max: opts.max ?? 4 }), schema, target, timeoutMs };
  }

  /**
   * Runs `body` on one connection whose statements may take five minutes, on both sides: the schema's
   * migrations (migrate-postgres.ts) may take longer than a request's deadline (an index on a large table).
   */
  static #schemaWork<T>(connections: PgConnections, timeoutMs: number, body: (c: BoundedClient) => Promise<T>): Promise<T> {
    return connections.withClient(async (c) => {
      await c.query("SET statement_timeout = '300s'");
      try {
        return await body(c);
      } finally {
        await c.query('RESET statement_timeout').catch(() => undefined);
      }
    }, Math.max(timeoutMs, 305_000));
  }

  /**
   * For `linkgw migrate`: waits for the server as a store's open does, runs `body` on a connection fit for
   * schema work, and closes everything. No store is opened (nothing is claimed or written).
   */
  static async schemaSession<T>(url: string, opts: PostgresStoreOptions, body: (c: BoundedClient, schema: string) => Promise<T>): Promise<T> {
    const { connections, schema, target, timeoutMs } = PostgresRecordStore.#connections(url, { max: 1, ...opts });
    try {
      await PostgresRecordStore.#reachable(connections, target, opts);
      return await PostgresRecordStore.#schemaWork(connections, timeoutMs, (c) => body(c, schema));
    } finally {
      await connections.end(500);
    }
  }

  static async open(url: string, opts: PostgresStoreOptions = {}): Promise<PostgresRecordStore> {
    const { connections, schema, target, timeoutMs } = PostgresRecordStore.#connections(url, opts);
    let weak: boolean;
    let report: MigrationReport;
    try {
      await PostgresRecordStore.#reachable(connections, target, opts);
      ({ weak, report } = await PostgresRecordStore.#schemaWork(connections, timeoutMs, async (c) => {
        const report = await migratePostgres(c, schema, opts.migrate ?? 'auto');
        const r = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
        return { weak: r.rows[0]?.synchronous_commit === 'off', report };
      }));
    } catch (e) {
      await connections.end(500);
      throw e;
    }
    logMigrations(opts.log, `schema ${schema}`, report);
    if (weak) opts.log?.warn('PostgreSQL runs with synchronous_commit = off; the record store sets it on for each of its own transactions');
    return new PostgresRecordStore(connections, schema, weak, opts.personIndex !== 'on-flush');
  }

  /**
   * Waits, up to `startWaitMs`, for the server to accept a connection, logging each failed attempt: a gateway
   * started while PostgreSQL is down (or still starting after a failover) starts when it comes, instead of
   * exiting at once. A server that refuses the login (a wrong password, no such database) fails at once.
   */
  static async #reachable(connections: PgConnections, target: string, opts: PostgresStoreOptions): Promise<void> {
    const started = Date.now();
    const until = started + (opts.startWaitMs ?? 0);
    for (let attempt = 1, pause = 250; ; attempt++, pause = Math.min(pause * 2, 5000)) {
      try {
        await connections.query('SELECT 1');
        if (attempt > 1) opts.log?.info('the record store (PostgreSQL) accepts connections', { target, waitedMs: Date.now() - started });
        return;
      } catch (e) {
        const why = describeStoreError(e);
        if (!worthWaiting(e)) throw new Error(`PostgreSQL at ${target} refused the record store's connection: ${why}`, { cause: e });
        if (opts.signal?.aborted || Date.now() + pause > until) {
          const waited = Math.round((Date.now() - started) / 1000);
          throw new Error(`PostgreSQL at ${target} did not accept connections${waited ? ` within ${waited} s` : ''}: ${why}`, { cause: e });
        }
        opts.log?.warn('waiting for the record store (PostgreSQL)', { target, attempt, waitedMs: Date.now() - started, giveUpInMs: until - Date.now(), err: why });
        await new Promise<void>((r) => {
          const t = setTimeout(r, pause);
          opts.signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
      }
    }
  }

  /** The writer's append connection, opened afresh when there is none or it was lost. */
  async #appender(w: Writer): Promise<PgSession> {
    if (w.appender && !w.appender.lost) return w.appender;
    if (w.appender) this.#drop(w.appender);
    w.appender = null;
    w.appender = await this.#c.session();
    return w.appender;
  }

  /** Gives up a session: its socket is closed and its server process asked to end (its locks go with it). */
  #drop(s: PgSession): void {
    this.#c.abandon(s);
  }

  async claimLog(logId: string, origin: string, opts: { waitMs?: number } = {}): Promise<ClaimedLog> {
    let w = this.#writers.get(logId);
    if (w?.lock.lost) {
      // The lock went with its connection: claim it again (its server process may take a moment to exit).
      this.#writers.delete(logId);
      this.#drop(w.lock);
      if (w.appender) this.#drop(w.appender);
      w = undefined;
    }
    if (!w) {
      const lock = await this.#c.session();
      try {
        const until = Date.now() + (opts.waitMs ?? 5000);
        for (;;) {
          const r = await lock.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [lockKey(this.#schema, logId)]);
          if (r.rows[0]?.locked) break;
          if (Date.now() >= until) throw storeError(LOG_LOCKED, `log ${logId} is being written by another process`);
          await new Promise((res) => setTimeout(res, 100));
        }
      } catch (e) {
        await lock.close();
        this.#c.forget(lock);
        throw e;
      }
      w = { lock, appender: null };
      this.#writers.set(logId, w);
    }
    const c = await this.#appender(w);
    await c.query('INSERT INTO record_logs (log_id, origin, size, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT (log_id) DO NOTHING', [logId, origin, Date.now()]);
    const row = (await c.query<{ origin: string; size: string; kept: string | null }>(
      'SELECT origin, size, (SELECT MAX(created_at) FROM log_checkpoints WHERE log_id = $1 AND kept = 1) AS kept FROM record_logs WHERE log_id = $1',
      [logId],
    )).rows[0]!;
    if (row.origin !== origin) throw new Error(`log ${logId} has the origin "${row.origin}", not "${origin}"`);
    const size = Number(row.size);
    const latest = (await c.query<CheckpointRow>(`${CHECKPOINT_SELECT} WHERE c.log_id = $1 ORDER BY c.size DESC LIMIT 1`, [logId])).rows[0];
    const waiting = await c.query<{ persons: string | null }>(
      `SELECT SUM(octet_length(p.persons) / 16) AS persons FROM person_runs p WHERE p.log_id = $1
         AND p.leaf_index >= COALESCE((SELECT below_leaf FROM person_index_frontier WHERE log_id = $1), 0)`,
      [logId],
    );
    // Runs a crashed writer left unmerged are merged by the next one.
    this.#unmerged.set(logId, Number(waiting.rows[0]?.persons ?? 0));
    if ((this.#unmerged.get(logId) ?? 0) > 0) void this.#index(logId);
    return {
      logId,
      origin,
      size,
      edge: await this.#nodes(c, logId, rangeNodes(0, size)),
      latest: latest ? rowToCheckpoint(latest) : null,
      lastKeptAt: row.kept === null ? null : Number(row.kept),
    };
  }

  /**
   * One append, bounded as a whole by the operation deadline. A failure before COMMIT was sent is marked
   * not-committed (the transaction can only roll back: nobody will send its COMMIT); a failure after it, with
   * no answer from the server, may have landed (the writer then reads the log again before going on).
   */
  async append(a: LogAppend): Promise<void> {
    const w = this.#writers.get(a.logId);
    if (!w || w.lock.lost) throw notCommitted(storeError(LOG_LOCKED, `log ${a.logId} is not claimed by this store (or its connection was lost)`));
    let c: PgSession;
    try {
      c = await this.#appender(w);
    } catch (e) {
      throw notCommitted(e);
    }
    // Back-pressure: past the backlog, a commit with persons waits for the index to catch up first (within its
    // deadline: a merge that does not keep up fails the commit as not committed, and nothing is released).
    if (a.records.some((r) => r.persons) && (this.#unmerged.get(a.logId) ?? 0) > PG_INDEX_BACKLOG) {
      const deadline = Date.now() + this.#c.timeoutMs;
      while ((this.#unmerged.get(a.logId) ?? 0) > PG_INDEX_BACKLOG) {
        if (Date.now() >= deadline) throw notCommitted(new Error(`the person index of log ${a.logId} is behind by more than ${PG_INDEX_BACKLOG} persons`));
        await Promise.race([this.#index(a.logId), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
      }
    }
    const until = Date.now() + this.#c.timeoutMs;
    const left = () => Math.max(1, until - Date.now());
    let commitSent = false;
    try {
      // In the same round trip as BEGIN: if synchronous_commit is off for this session (whatever the server
      // was set to when the store opened, or since), turn it on for this transaction; stronger settings stay.
      await c.query("BEGIN; SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'", undefined, left());
      const cols: unknown[][] = Array.from({ length: RECORD_COLUMNS.length }, () => []);
      const runLeaves: number[] = [];
      const runRecords: string[] = [];
      const runs: Buffer[] = [];
      let persons = 0;
      a.records.forEach((r, i) => {
        recordToValues(r, a.leafHashes.subarray(i * 32, i * 32 + 32)).forEach((x, j) => cols[j]!.push(x));
        if (r.persons) {
          runLeaves.push(r.leafIndex);
          runRecords.push(r.recordId);
          runs.push(Buffer.from(r.persons.buffer, r.persons.byteOffset, r.persons.byteLength));
          persons += runLength(r.persons);
        }
      });
      const nodeHashes = a.nodes.levels.map((_, i) => a.nodes.hashes.subarray(i * 32, i * 32 + 32));
      const moved = await c.query<{ moved: string }>(
        `WITH cas AS (UPDATE record_logs SET size = $2 WHERE log_id = $1 AND size = $3 RETURNING 1),
           nodes AS (INSERT INTO log_nodes (log_id, level, idx, hash)
             SELECT $1, * FROM unnest($4::int[], $5::bigint[], $6::bytea[]) WHERE EXISTS (SELECT 1 FROM cas)),
           runs AS (INSERT INTO person_runs (log_id, leaf_index, record_id, persons)
             SELECT $1, * FROM unnest($7::bigint[], $8::text[], $9::bytea[]) WHERE EXISTS (SELECT 1 FROM cas)),
           records AS (INSERT INTO access_records (${RECORD_COLUMNS.join(', ')})
             SELECT * FROM unnest($10::text[], $11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::text[], $17::text[],
               $18::text[], $19::text[], $20::text[], $21::int[], $22::int[], $23::bytea[], $24::bytea[], $25::text[]) WHERE EXISTS (SELECT 1 FROM cas))
         SELECT count(*) AS moved FROM cas`,
        [a.logId, a.fromSize + a.records.length, a.fromSize, a.nodes.levels, a.nodes.indexes, nodeHashes, runLeaves, runRecords, runs, ...cols],
        left(),
      );
      if (Number(moved.rows[0]?.moved) !== 1) throw storeError(LOG_CONFLICT, `log ${a.logId} is no longer at size ${a.fromSize}: another writer appended to it`);
      const cp = a.checkpoint;
      if (cp)
        await c.query(
          `WITH gone AS (DELETE FROM log_checkpoints WHERE log_id = $1 AND size = $7 AND kept = 0)
           INSERT INTO log_checkpoints (log_id, size, root, signed_note, cosignatures, created_at, kept) VALUES ($1, $2, $3, $4, '', $5, $6)`,
          [a.logId, cp.size, cp.rootHash, cp.signedNote, cp.createdAt, cp.kept ? 1 : 0, cp.replaces ?? -1],
          left(),
        );
      commitSent = true;
      await c.query('COMMIT', undefined, left());
      this.#maybeAnalyze(a.records.length);
      if (persons > 0) {
        this.#unmerged.set(a.logId, (this.#unmerged.get(a.logId) ?? 0) + persons);
        this.#index(a.logId);
      }
    } catch (e) {
      if (c.lost) {
        this.#drop(c);
        if (w.appender === c) w.appender = null;
      } else await c.query('ROLLBACK').catch(() => undefined);
      // An error the server answered (not a lost connection) means it rolled back, COMMIT included.
      const answered = e instanceof pg.DatabaseError && e.severity === 'ERROR';
      throw commitSent && !answered ? e : notCommitted(e);
    }
  }

  personIndexBacklog(): number {
    let n = 0;
    for (const v of this.#unmerged.values()) n += v;
    return n;
  }

  async flushIndex(): Promise<void> {
    for (const logId of this.#unmerged.keys()) await this.#index(logId, true);
  }

  async check(): Promise<void> {
    await this.#c.query('SELECT size FROM record_logs LIMIT 1');
  }

  async addCosignatures(logId: string, size: number, lines: string): Promise<boolean> {
    const r = await this.#c.query('UPDATE log_checkpoints SET cosignatures = cosignatures || $3 WHERE log_id = $1 AND size = $2', [logId, size, lines]);
    return r.rowCount === 1;
  }

  logs(): Promise<LogInfo[]> {
    return PostgresRecordStore.#logs(this.#c);
  }

  static async #logs(c: BoundedClient): Promise<LogInfo[]> {
    const r = await c.query<{ log_id: string; origin: string; size: string; created_at: string; max_leaf: string | null }>(
      'SELECT log_id, origin, size, created_at, (SELECT MAX(leaf_index) FROM access_records a WHERE a.log_id = l.log_id) AS max_leaf FROM record_logs l ORDER BY log_id',
    );
    return r.rows.map((x) => ({ logId: x.log_id, origin: x.origin, size: Number(x.size), maxLeafIndex: x.max_leaf === null ? null : Number(x.max_leaf), createdAt: Number(x.created_at) }));
  }

  async latestCheckpoints(): Promise<StoredCheckpoint[]> {
    const r = await this.#c.query<CheckpointRow>(
      // Driven by the few logs, one index probe each (the hourly history is not scanned).
      `SELECT c.*, l.origin FROM record_logs l CROSS JOIN LATERAL (SELECT * FROM log_checkpoints x WHERE x.log_id = l.log_id ORDER BY x.size DESC LIMIT 1) c ORDER BY l.log_id`,
    );
    return r.rows.map(rowToCheckpoint);
  }

  async checkpoints(logId: string): Promise<StoredCheckpoint[]> {
    const r = await this.#c.query<CheckpointRow>(`${CHECKPOINT_SELECT} WHERE c.log_id = $1 ORDER BY c.size`, [logId]);
    return r.rows.map(rowToCheckpoint);
  }

  /**
   * One REPEATABLE READ READ ONLY transaction on one connection: every read sees the same snapshot, so records
   * committed after it started (with their nodes and checkpoints) are all invisible, never half seen. Reads
   * are paged (records by key range, persons through one cursor per log), each bounded by ten minutes.
   */
  async readSnapshot<T>(fn: (r: SnapshotReader) => Promise<T>): Promise<T> {
    const LONG = 600_000;
    return this.#c.withClient(async (c) => {
      await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = '600s'; SET LOCAL idle_in_transaction_session_timeout = '600s'");
      try {
        // The persons cursor of the log being read, and the first row it fetched past the range asked for.
        let cursor: { logId: string; next: number; rows: { leaf_index: string; record_id: string; own: string; subject: string }[]; done: boolean } | undefined;
        const reader: SnapshotReader = {
          logs: () => PostgresRecordStore.#logs(c),
          checkpoints: async (logId) => (await c.query<CheckpointRow>(`${CHECKPOINT_SELECT} WHERE c.log_id = $1 ORDER BY c.size`, [logId])).rows.map(rowToCheckpoint),
          purges: async (logId) => (await c.query<PurgeRow>('SELECT * FROM log_purges WHERE log_id = $1 ORDER BY below_leaf', [logId])).rows.map(rowToPurge),
          nodes: (logId, ids) => this.#nodes(c, logId, ids),
          readLeaves: async (logId, from, to, limit) =>
            (await c.query<RecordRow>('SELECT * FROM access_records WHERE log_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index LIMIT $4', [logId, from, to, limit])).rows.map(rowToRecord),
          firstLeafFrom: async (logId, from, time) => {
            const r = await c.query<{ first: string | null }>('SELECT MIN(leaf_index) AS first FROM access_records WHERE log_id = $1 AND leaf_index >= $2 AND requested_at >= $3', [logId, from, time]);
            return r.rows[0]?.first == null ? null : Number(r.rows[0].first);
          },
          persons: async (logId, from, to) => {
            if (!cursor || cursor.logId !== logId || from < cursor.next) {
              if (cursor) await c.query('CLOSE verify_persons');
              // Sorted by the server (spilling to disk if it must), read here a page at a time.
              await c.query(
                `DECLARE verify_persons NO SCROLL CURSOR FOR
                   SELECT r.leaf_index, r.record_id, r.subject AS own, s.subject FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id
                   WHERE r.log_id = $1 AND r.leaf_index >= $2 ORDER BY r.leaf_index`,
                [logId, from],
              );
              cursor = { logId, next: from, rows: [], done: false };
            }
            const byLeaf = new Map<number, { recordId: string; own: string; subjects: string[] }>();
            for (;;) {
              if (cursor.rows.length === 0) {
                if (cursor.done) break;
                const page = await c.query<{ leaf_index: string; record_id: string; own: string; subject: string }>('FETCH 5000 FROM verify_persons');
                cursor.rows = page.rows;
                if (page.rows.length < 5000) cursor.done = true;
                if (cursor.rows.length === 0) break;
              }
              const row = cursor.rows[0]!;
              const leaf = Number(row.leaf_index);
              if (leaf >= to) break;
              cursor.rows.shift();
              if (leaf < from) continue;
              let g = byLeaf.get(leaf);
              if (!g) byLeaf.set(leaf, (g = { recordId: row.record_id, own: row.own, subjects: [] }));
              g.subjects.push(row.subject);
            }
            cursor.next = to;
            const out = new Map<number, RecordPersons>();
            for (const [leaf, g] of byLeaf) out.set(leaf, { recordId: g.recordId, commitment: subjectsCommitment(g.recordId, g.subjects), stray: g.own !== '', count: g.subjects.length });
            // The runs are the truth; the index must agree with them (run-persons.ts).
            const below = await c.query<{ below: string }>('SELECT COALESCE((SELECT below_leaf FROM person_index_frontier WHERE log_id = $1), 0) AS below', [logId]);
            const runs = await c.query<{ leaf_index: string; record_id: string; persons: Buffer; own: string | null }>(
              `SELECT p.leaf_index, p.record_id, p.persons, r.subject AS own FROM person_runs p LEFT JOIN access_records r ON r.log_id = p.log_id AND r.leaf_index = p.leaf_index
               WHERE p.log_id = $1 AND p.leaf_index >= $2 AND p.leaf_index < $3`,
              [logId, from, to],
            );
            return mergePersons(out, runs.rows, Number(below.rows[0]!.below));
          },
        };
        const value = await fn(reader);
        await c.query('COMMIT');
        return value;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    }, LONG);
  }

  /**
   * The purge in one transaction, one statement per table (so that a partitioned table can drop whole
   * partitions instead, later). The persons go first: they are found through the records.
   */
  async purge(p: NewPurge): Promise<PurgeResult | null> {
    return this.#c.withClient(async (c) => {
      await c.query("BEGIN; SET LOCAL statement_timeout = '3600s'; SET LOCAL idle_in_transaction_session_timeout = '3600s'");
      try {
        const added = await c.query(
          `INSERT INTO log_purges (log_id, below_leaf, root, frontier, signed_note, purged_at, before_time) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (log_id, below_leaf) DO NOTHING`,
          [p.logId, p.belowLeaf, p.rootHash, Buffer.concat(p.frontier), p.signedNote, p.purgedAt, p.before],
        );
        if (added.rowCount !== 1) {
          await c.query('ROLLBACK');
          return null;
        }
        const persons = await c.query('DELETE FROM record_subjects WHERE record_id IN (SELECT record_id FROM access_records WHERE log_id = $1 AND leaf_index < $2)', [p.logId, p.belowLeaf]);
        await c.query('DELETE FROM person_runs WHERE log_id = $1 AND leaf_index < $2', [p.logId, p.belowLeaf]);
        // Records of months wholly before `before` are left to finishPurge, which drops such a month whole
        // once every log is purged past it (ADR 0012); the others go now.
        const cutoff = monthStart(p.before);
        const left = await c.query<{ n: string }>('SELECT count(*) AS n FROM access_records WHERE log_id = $1 AND leaf_index < $2 AND requested_at < $3', [p.logId, p.belowLeaf, cutoff]);
        const records = await c.query('DELETE FROM access_records WHERE log_id = $1 AND leaf_index < $2 AND requested_at >= $3', [p.logId, p.belowLeaf, cutoff]);
        await c.query('COMMIT');
        return { records: (records.rowCount ?? 0) + Number(left.rows[0]?.n ?? 0), persons: persons.rowCount ?? 0 };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    }, 3_605_000);
  }

  async finishPurge(before: number): Promise<FinishedPurge> {
    return this.#c.withClient(async (c) => {
      await c.query("BEGIN; SET LOCAL statement_timeout = '3600s'; SET LOCAL idle_in_transaction_session_timeout = '3600s'");
      try {
        // One run at a time (the migration lock also guards partitions being made).
        await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(this.#schema)]);
        const points = await c.query<{ log_id: string; below: string }>('SELECT log_id, MAX(below_leaf) AS below FROM log_purges GROUP BY log_id');
        const below = new Map(points.rows.map((r) => [r.log_id, Number(r.below)]));
        const dropped: string[] = [];
        for (const part of await droppablePartitions(c, before, below)) {
          // Their persons went with each log's purge; the records go with the partition.
          await c.query(`DROP TABLE ${part.name}`);
          dropped.push(part.name);
        }
        const rest = await c.query(
          'DELETE FROM access_records a USING (SELECT log_id, MAX(below_leaf) AS below FROM log_purges GROUP BY log_id) p WHERE a.log_id = p.log_id AND a.leaf_index < p.below',
        );
        await c.query('COMMIT');
        return { partitionsDropped: dropped, recordsDeleted: rest.rowCount ?? 0 };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    }, 3_605_000);
  }

  async #nodes(q: BoundedClient, logId: string, ids: readonly NodeId[]): Promise<Buffer[]> {
    if (ids.length === 0) return [];
    // Leaves, and the leaves under the nodes too low to be stored; the stored nodes above them.
    const leaves = new Set<number>();
    for (const n of ids)
      if (n.level < LOWEST_STORED_LEVEL) {
        const { first, count } = leavesUnder(n.level, n.index);
        for (let i = first; i < first + count; i++) leaves.add(i);
      }
    const inner = ids.filter((n) => n.level >= LOWEST_STORED_LEVEL);
    const r = await q.query<{ level: number; idx: string; hash: Buffer }>(
      `SELECT 0 AS level, leaf_index AS idx, leaf_hash AS hash FROM access_records WHERE log_id = $1 AND leaf_index = ANY($2::bigint[])
       UNION ALL
       SELECT n.level, n.idx, n.hash FROM unnest($3::int[], $4::bigint[]) AS want(level, idx)
         JOIN log_nodes n ON n.log_id = $1 AND n.level = want.level AND n.idx = want.idx`,
      [logId, [...leaves], inner.map((n) => n.level), inner.map((n) => n.index)],
    );
    const found = new Map(r.rows.map((x) => [`${x.level}/${x.idx}`, x.hash]));
    const low = (level: number, index: number): Buffer | undefined => {
      const { first, count } = leavesUnder(level, index);
      const hs = Array.from({ length: count }, (_, i) => found.get(`0/${first + i}`));
      return hs.every((h) => h) ? rootOfLeafHashes(hs as Buffer[]) : undefined;
    };
    return ids.map(({ level, index }) => {
      const h = level > 0 && level < LOWEST_STORED_LEVEL ? low(level, index) : found.get(`${level}/${index}`);
      if (!h) throw new Error(`log ${logId}: tree node ${level}/${index} is not stored`);
      return h;
    });
  }

  nodes(logId: string, ids: readonly NodeId[]): Promise<Buffer[]> {
    return this.#nodes(this.#c, logId, ids);
  }

  async recordById(recordId: string): Promise<LoggedRecord | null> {
    const r = await this.#c.query<RecordRow>('SELECT * FROM access_records WHERE record_id = $1', [recordId]);
    return r.rows[0] ? rowToRecord(r.rows[0]) : null;
  }

  async readLeaves(logId: string, from: number, to: number, limit: number): Promise<LoggedRecord[]> {
    const r = await this.#c.query<RecordRow>('SELECT * FROM access_records WHERE log_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index LIMIT $4', [
      logId,
      from,
      to,
      limit,
    ]);
    return r.rows.map(rowToRecord);
  }

  async storedPersons(logId?: string): Promise<StoredPersons> {
    // One pass over the log's persons through a cursor, grouped by record: never all persons in memory at once.
    const out: StoredPersons = { batch: new Map(), strays: new Set() };
    return this.#c.withClient(async (c) => {
      await c.query('BEGIN READ ONLY');
      try {
        await c.query(
          `DECLARE persons NO SCROLL CURSOR FOR
             SELECT s.record_id, s.subject, r.subject AS own FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id
             ${logId === undefined ? '' : 'WHERE r.log_id = $1'} ORDER BY s.record_id`,
          logId === undefined ? [] : [logId],
        );
        let current: { recordId: string; own: string; subjects: string[] } | undefined;
        const flush = () => {
          if (!current) return;
          if (current.own !== '') out.strays.add(current.recordId);
          else out.batch.set(current.recordId, { commitment: subjectsCommitment(current.recordId, current.subjects), persons: current.subjects.length });
        };
        for (;;) {
          const page = await c.query<{ record_id: string; subject: string; own: string }>('FETCH 10000 FROM persons');
          for (const r of page.rows) {
            if (current?.recordId !== r.record_id) {
              flush();
              current = { recordId: r.record_id, own: r.own, subjects: [] };
            }
            current.subjects.push(r.subject);
          }
          if (page.rows.length < 10000) break;
        }
        flush();
        // The runs are the truth: a batch record with a run is committed to by its run.
        const runs = await c.query<{ record_id: string; persons: Buffer }>(`SELECT record_id, persons FROM person_runs ${logId === undefined ? '' : 'WHERE log_id = $1'}`, logId === undefined ? [] : [logId]);
        for (const r of runs.rows) out.batch.set(r.record_id, { commitment: storedRunCommitment(r.record_id, r.persons), persons: runLength(r.persons) });
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async listBySubject(q: RecordQuery): Promise<LoggedRecord[]> {
    const { name, text, values } = listBySubjectQuery(q);
    const r = await this.#c.query<RecordRow>({ name, text }, values);
    return r.rows.map(rowToRecord);
  }

  async exchangesOf(q: ExchangeQuery): Promise<LoggedRecord[]> {
    const r = await this.#c.query<RecordRow>(
      // An exchange whose answer was not released (a NOT_RELEASED record corrects it) sent nothing anywhere.
      { name: 'exchanges-of', text: `SELECT * FROM access_records r WHERE r.subject = $1 AND r.requested_at >= $2 AND r.outcome = ${Outcome.PROVIDED} AND (r.requester = $3 OR r.provider = $3)
         AND NOT EXISTS (SELECT 1 FROM access_records c WHERE c.subject = r.subject AND c.outcome = ${Outcome.NOT_RELEASED} AND c.corrects_record_id = r.record_id)
       ORDER BY r.requested_at DESC, r.log_id DESC, r.leaf_index DESC LIMIT $4` },
      [q.subject, q.since ?? Number.MIN_SAFE_INTEGER, q.agency, q.limit],
    );
    return r.rows.map(rowToRecord);
  }

  /** Releases the locks and closes every connection, within `graceMs` whatever the server does. */
  async close(graceMs = 500): Promise<void> {
    this.#closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#analyzing, new Promise<void>((r) => (timer = setTimeout(r, graceMs / 2)))]);
    clearTimeout(timer);
    this.#writers.clear();
    await this.#c.end(graceMs / 2);
  }
}

/**
 * The disclosure lookup: the subject's own records, and the batch records that name it, merged newest first.
 * Exported for bench/partition-plan.ts, which shows its plan on a large partitioned store.
 */
export function listBySubjectQuery(q: RecordQuery): { name: string; text: string; values: unknown[] } {
  const values: unknown[] = [q.subject];
  const arg = (v: unknown) => `$${values.push(v)}`;
  const where = ['r.non_disclosable = 0'];
  if (q.from !== null) where.push(`r.requested_at >= ${arg(q.from)}`);
  if (q.to !== null) where.push(`r.requested_at < ${arg(q.to)}`);
  if (q.after) where.push(`(r.requested_at, r.log_id, r.leaf_index) < (${arg(q.after.requestedAt)}, ${arg(q.after.logId)}, ${arg(q.after.leafIndex)})`);
  const limit = arg(q.limit);
  // Runs not merged into the index yet hold the persons of the newest batch records: searched in their bytes
  // (a key found at a whole-key offset; runs are sorted, so a key is there at most once). OFFSET 0 keeps the
  // planner from pushing position() down to every run, merged or not: that read (detoasted) all 10 M persons'
  // runs, 160 MB, for every lookup after a 10-million-code bulk run (p50 3 s).
  const key = arg(Buffer.from(subjectKeyBytes(q.subject) ?? new Uint8Array(0)));
  const filter = where.join(' AND ');
  const order = 'ORDER BY requested_at DESC, log_id DESC, leaf_index DESC';
  const inner = order.replace(/(requested_at|log_id|leaf_index)( |$)/g, 'r.$1$2');
  const text = `(SELECT r.* FROM access_records r WHERE r.subject = $1 AND ${filter} ${inner} LIMIT ${limit})
       UNION ALL
       (SELECT r.* FROM access_records r WHERE r.record_id IN (SELECT s.record_id FROM record_subjects s WHERE s.subject = $1) AND ${filter} ${inner} LIMIT ${limit})
       UNION ALL
       (SELECT r.* FROM access_records r WHERE r.record_id IN (
          SELECT u.record_id FROM (
            SELECT p.record_id, p.persons FROM person_runs p LEFT JOIN person_index_frontier f ON f.log_id = p.log_id
            WHERE p.leaf_index >= COALESCE(f.below_leaf, 0)
            OFFSET 0
          ) u WHERE octet_length(${key}::bytea) = 16 AND position(${key}::bytea IN u.persons) % 16 = 1
        ) AND ${filter} ${inner} LIMIT ${limit})
       ${order} LIMIT ${limit}`;
  // One prepared statement per shape of filter (8 at most per connection).
  const name = `list-by-subject-${q.from !== null ? 'f' : ''}${q.to !== null ? 't' : ''}${q.after ? 'a' : ''}`;
  return { name, text, values };
}
