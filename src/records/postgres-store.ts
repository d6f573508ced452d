/**
 * The PostgreSQL record store (LINKGW_RECORDS_URL=postgres://…). A batch is one transaction with one multi-row
 * INSERT through unnest() and one seal row: one WAL flush per batch, whatever its size. Tables live in the
 * schema named by the URL's `schema` parameter (default `public`), so tests and tenants can be kept apart.
 */
import pg from 'pg';
import type { Logger } from '../log/logger.js';
import { Outcome, type ChainedRecord, type ChainedRecordWithSubjects, type ChainLink, type Seal } from '../core/access-record.js';
import type { ExchangeQuery, RecordQuery, RecordStore, StoredChain } from './record-store.js';
import { groupLinks, RECORD_COLUMNS, recordToValues, schemaFor, rowToLink, rowToRecord, rowToSeal, type LinkRow, type RecordRow, type SealRow } from './schema.js';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export class PostgresRecordStore implements RecordStore {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  /** Rows written since the planner's statistics were last refreshed, and rows known then. */
  #sinceAnalyze = 0;
  #rowsAtAnalyze = 0;
  #analyzing: Promise<void> | undefined;

  /**
   * True when the server's default was synchronous_commit = off when the store opened, which would let a
   * commit return before its WAL is flushed (logged as a warning). Every batch checks the setting itself and
   * turns it back on for its own transaction, since a record must be durable before anything is released.
   */
  readonly syncCommitForced: boolean;

  private constructor(pool: pg.Pool, syncCommitForced: boolean) {
    this.#pool = pool;
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
    this.#analyzing = this.#pool
      .query('ANALYZE access_records, record_subjects')
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

  static async open(url: string, opts: { statementTimeoutMs?: number; max?: number; log?: Logger } = {}): Promise<PostgresRecordStore> {
    const u = new URL(url);
    const schema = u.searchParams.get('schema') ?? 'public';
    if (!IDENT.test(schema)) throw new Error('records URL: schema must be a plain lower-case identifier');
    u.searchParams.delete('schema');
    // Server options given in the URL (`options=-c name=value …`) are kept; the search path is the store's.
    const extra = u.searchParams.get('options') ?? '';
    u.searchParams.delete('options');
    const pool = new pg.Pool({
      connectionString: u.toString(),
      max: opts.max ?? 4,
      statement_timeout: opts.statementTimeoutMs ?? 5000,
      connectionTimeoutMillis: 5000,
      options: `${extra} -c search_path=${schema}`.trim(),
    });
    // An idle client that loses its server must not crash the process; the next query reports the failure.
    pool.on('error', () => undefined);
    const c = await pool.connect();
    let weak: boolean;
    try {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      for (const s of schemaFor('postgres')) await c.query(s);
      const r = await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      weak = r.rows[0]?.synchronous_commit === 'off';
    } finally {
      c.release();
    }
    if (weak) opts.log?.warn('PostgreSQL runs with synchronous_commit = off; the record store sets it on for each of its own transactions');
    return new PostgresRecordStore(pool, weak);
  }

  async commit(records: readonly ChainedRecordWithSubjects[], seal: Seal, links?: readonly ChainLink[]): Promise<void> {
    const c = await this.#pool.connect();
    try {
      // In the same round trip as BEGIN: if synchronous_commit is off for this session (whatever the server
      // was set to when the store opened, or since), turn it on for this transaction; stronger settings stay.
      await c.query("BEGIN; SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'");
      if (links?.length)
        await c.query('INSERT INTO record_chain_links (chain_id, predecessor, last_seq, head_hash) SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[])', [
          seal.chainId,
          links.map((l) => l.predecessor),
          links.map((l) => l.lastSeq),
          links.map((l) => l.headHash),
        ]);
      const cols: unknown[][] = Array.from({ length: 16 }, () => []);
      const subjects: string[] = [];
      const subjectRecords: string[] = [];
      for (const r of records) {
        recordToValues(r).forEach((x, i) => cols[i]!.push(x));
        if (r.subjects) for (const s of r.subjects) subjects.push(s), subjectRecords.push(r.recordId);
      }
      await c.query(
        `INSERT INTO access_records (${RECORD_COLUMNS.join(', ')})
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[],
           $9::text[], $10::text[], $11::text[], $12::int[], $13::int[], $14::text[], $15::text[], $16::text[])`,
        cols,
      );
      if (subjects.length > 0)
        await c.query('INSERT INTO record_subjects (subject, record_id) SELECT * FROM unnest($1::text[], $2::text[])', [subjects, subjectRecords]);
      await c.query('INSERT INTO record_seals (chain_id, last_seq, head_hash, signature, key_id, sealed_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        seal.chainId,
        seal.lastSeq,
        seal.headHash,
        seal.signature,
        seal.keyId,
        seal.sealedAt,
      ]);
      await c.query('COMMIT');
      c.release();
      this.#maybeAnalyze(records.length + subjects.length);
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      c.release(true);
      throw e;
    }
  }

  async head(chainId: string): Promise<{ lastSeq: number; headHash: string } | null> {
    const r = await this.#pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM access_records WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1', [chainId]);
    const row = r.rows[0];
    return row ? { lastSeq: Number(row.seq), headHash: row.hash } : null;
  }

  async listBySubject(q: RecordQuery): Promise<ChainedRecord[]> {
    // The subject's own records, and the batch records that name it, merged newest first.
    const args: unknown[] = [q.subject];
    const arg = (v: unknown) => `$${args.push(v)}`;
    const where = ['r.non_disclosable = 0'];
    if (q.from !== null) where.push(`r.requested_at >= ${arg(q.from)}`);
    if (q.to !== null) where.push(`r.requested_at < ${arg(q.to)}`);
    if (q.after) where.push(`(r.requested_at, r.chain_id, r.seq) < (${arg(q.after.requestedAt)}, ${arg(q.after.chainId)}, ${arg(q.after.seq)})`);
    const limit = arg(q.limit);
    const filter = where.join(' AND ');
    const order = 'ORDER BY requested_at DESC, chain_id DESC, seq DESC';
    const r = await this.#pool.query<RecordRow>(
      `(SELECT r.* FROM access_records r WHERE r.subject = $1 AND ${filter} ${order.replace(/(requested_at|chain_id|seq) /g, 'r.$1 ')} LIMIT ${limit})
       UNION ALL
       (SELECT r.* FROM access_records r WHERE r.record_id IN (SELECT s.record_id FROM record_subjects s WHERE s.subject = $1) AND ${filter} ${order.replace(/(requested_at|chain_id|seq) /g, 'r.$1 ')} LIMIT ${limit})
       ${order} LIMIT ${limit}`,
      args,
    );
    return r.rows.map(rowToRecord);
  }

  async chainIds(): Promise<string[]> {
    const r = await this.#pool.query<{ chain_id: string }>(
      'SELECT chain_id FROM access_records UNION SELECT chain_id FROM record_seals UNION SELECT chain_id FROM record_chain_links ORDER BY 1',
    );
    return r.rows.map((x) => x.chain_id);
  }

  async readChain(chainId: string): Promise<StoredChain> {
    const rows = await this.#pool.query<RecordRow>('SELECT * FROM access_records WHERE chain_id = $1 ORDER BY seq', [chainId]);
    const seals = await this.#pool.query<SealRow>('SELECT * FROM record_seals WHERE chain_id = $1 ORDER BY last_seq', [chainId]);
    const subjectRows = await this.#pool.query<{ record_id: string; subject: string }>(
      'SELECT s.record_id, s.subject FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id WHERE r.chain_id = $1',
      [chainId],
    );
    const subjects = new Map<string, string[]>();
    for (const x of subjectRows.rows) {
      let l = subjects.get(x.record_id);
      if (!l) subjects.set(x.record_id, (l = []));
      l.push(x.subject);
    }
    const links = await this.#pool.query<LinkRow>('SELECT predecessor, last_seq, head_hash FROM record_chain_links WHERE chain_id = $1 ORDER BY predecessor', [chainId]);
    return { rows: rows.rows.map(rowToRecord), seals: seals.rows.map(rowToSeal), subjects, links: links.rows.map(rowToLink) };
  }

  async exchangesOf(q: ExchangeQuery): Promise<ChainedRecord[]> {
    const r = await this.#pool.query<RecordRow>(
      `SELECT * FROM access_records WHERE subject = $1 AND requested_at >= $2 AND outcome = ${Outcome.PROVIDED} AND (requester = $3 OR provider = $3)
       ORDER BY requested_at DESC, chain_id DESC, seq DESC LIMIT $4`,
      [q.subject, q.since ?? Number.MIN_SAFE_INTEGER, q.agency, q.limit],
    );
    return r.rows.map(rowToRecord);
  }

  async heads(): Promise<ChainLink[]> {
    // A skip scan over the primary key: one index probe per chain, not a read of every record.
    const r = await this.#pool.query<LinkRow>(
      `WITH RECURSIVE c AS (
         (SELECT chain_id FROM access_records ORDER BY chain_id LIMIT 1)
         UNION ALL
         SELECT (SELECT a.chain_id FROM access_records a WHERE a.chain_id > c.chain_id ORDER BY a.chain_id LIMIT 1) FROM c WHERE c.chain_id IS NOT NULL
       )
       SELECT h.chain_id AS predecessor, h.seq AS last_seq, h.hash AS head_hash
       FROM c CROSS JOIN LATERAL (SELECT chain_id, seq, hash FROM access_records a WHERE a.chain_id = c.chain_id ORDER BY seq DESC LIMIT 1) h
       WHERE c.chain_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM record_chain_links l WHERE l.predecessor = h.chain_id AND l.last_seq = h.seq)
       ORDER BY 1`,
    );
    return r.rows.map(rowToLink);
  }

  async allLinks(): Promise<Map<string, ChainLink[]>> {
    const r = await this.#pool.query<LinkRow & { chain_id: string }>(
      'SELECT chain_id, predecessor, last_seq, head_hash FROM record_chain_links ORDER BY chain_id, predecessor',
    );
    return groupLinks(r.rows);
  }

  async close(): Promise<void> {
    await this.#analyzing;
    await this.#pool.end();
  }
}
