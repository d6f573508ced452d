/**
 * The PostgreSQL record store's connections, built so that no connection can crash the gateway or hold it:
 *
 * - **Every connection has an error listener for its whole life.** pg-pool listens only while a client is idle
 *   in the pool; a checked-out client whose server goes away (pg_terminate_backend, a failover) emits 'error'
 *   with nobody listening, and Node ends the process (seen in most trials of issue 9). Here a client gets its
 *   listener the moment it is handed out, and keeps it.
 * - **Every query has a client-side deadline.** `statement_timeout` is enforced by the very server process that
 *   is hung (a stopped backend, a black-holed path), so it cannot bound a hang; a query that misses its
 *   deadline closes its socket at once (never a polite Terminate that waits for a dead peer) and fails with
 *   STORE_TIMEOUT. The connection is never used again: pg's own query_timeout would leave it half-used.
 * - **Sessions are named** `application_name` = `linkgw/<replica>`, so operators (and the fault tests) find the
 *   gateway's backends in pg_stat_activity.
 * - **Closing is bounded**: whatever the server does, `end()` returns within its grace.
 */
import pg from 'pg';
import { STORE_TIMEOUT, storeTimeout } from './store-errors.js';

type Queryable = pg.ClientBase;

/** Closes a client's socket without waiting for the server (a stopped backend never answers a Terminate). */
export function destroyClient(c: Queryable): void {
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Runs one query with a deadline. On a miss the client's socket is destroyed (the query then fails inside pg
 * with "Connection terminated", which nobody waits for any more) and the promise rejects with STORE_TIMEOUT.
 */
export function boundedQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(c: Queryable, query: QueryText, values: unknown[] | undefined, ms: number): Promise<pg.QueryResult<R>> {
  const text = typeof query === 'string' ? query : query.text;
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      destroyClient(c);
      reject(storeTimeout(`a query (${text.trimStart().split(/\s+/, 1)[0]})`, ms));
    }, ms);
    (typeof query === 'string' ? c.query<R>(query, values) : c.query<R>({ name: query.name, text, values })).then(
      (r) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * A query's text, or a named one: PostgreSQL prepares a named statement once per connection and keeps its
 * plan (the disclosure lookup over many partitions plans longer than it runs: bench/partition-plan.ts).
 */
export type QueryText = string | { readonly name: string; readonly text: string };

/** What a store operation is given: one connection's queries, each bounded by the connection's deadline. */
export interface BoundedClient {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: QueryText, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * A connection of its own, outside the pool (the log's lock, the writer's appends): it records why it was lost
 * instead of throwing, and never blocks its owner.
 */
export class PgSession implements BoundedClient {
  readonly #client: pg.Client;
  readonly #timeoutMs: number;
  #lost: Error | null = null;

  private constructor(client: pg.Client, timeoutMs: number) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    client.on('error', (e: Error) => void (this.#lost ??= e));
    client.on('end', () => void (this.#lost ??= new Error('the connection to PostgreSQL was closed')));
  }

  /** When its server process started (with the pid, what names that process without doubt), once known. */
  backendStart: string | undefined;

  /** Connects within the deadline (a server that accepts TCP and never answers must not hold the caller). */
  static async open(config: pg.ClientConfig, timeoutMs: number): Promise<PgSession> {
    const s = new PgSession(new pg.Client(config), timeoutMs);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      destroyClient(s.#client);
    }, timeoutMs);
    try {
      await s.#client.connect();
    } catch (e) {
      destroyClient(s.#client);
      throw timedOut ? storeTimeout('a connection attempt', timeoutMs) : e;
    } finally {
      clearTimeout(timer);
    }
    try {
      const r = await s.query<{ started: string }>('SELECT backend_start::text AS started FROM pg_stat_activity WHERE pid = pg_backend_pid()');
      s.backendStart = r.rows[0]?.started;
    } catch (e) {
      s.destroy();
      throw e;
    }
    return s;
  }

  /** Why the connection is unusable (closed by the server, a network error, a missed deadline), or null. */
  get lost(): Error | null {
    return this.#lost;
  }

  /** The server process of this session (pg_backend_pid), for logs. */
  get backendPid(): number | undefined {
    return (this.#client as unknown as { processID?: number }).processID;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: QueryText, values?: unknown[], timeoutMs = this.#timeoutMs): Promise<pg.QueryResult<R>> {
    if (this.#lost) return Promise.reject(this.#lost);
    return boundedQuery<R>(this.#client, text, values, timeoutMs).catch((e: unknown) => {
      if ((e as { code?: string }).code === STORE_TIMEOUT) this.#lost ??= e as Error;
      throw e;
    });
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.#lost ??= new Error('the connection was closed by the store');
    destroyClient(this.#client);
  }

  /** Says goodbye to the server, waiting at most `graceMs` for it, then drops the connection. */
  async close(graceMs = 500): Promise<void> {
    if (this.#lost) return this.destroy();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#client.end().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.destroy();
  }
}

export interface PgConnectionOptions {
  /** The client configuration (connection string, search path, session settings). */
  readonly client: pg.ClientConfig;
  /** Client-side deadline of each query, and of each connection attempt, ms. */
  readonly timeoutMs: number;
  /** Pooled connections at most (reads, cosignatures). */
  readonly max: number;
}

/**
 * The store's pooled connections (reads) and the factory of its own sessions. The pool is pg-pool, used only
 * through `query` and `withClient`, which give each checked-out client an error listener and a deadline.
 */
export class PgConnections {
  readonly #pool: pg.Pool;
  readonly #o: PgConnectionOptions;
  readonly #sessions = new Set<PgSession>();
  #ending = false;

  constructor(o: PgConnectionOptions) {
    this.#o = o;
    this.#pool = new pg.Pool({ ...o.client, max: o.max, connectionTimeoutMillis: o.timeoutMs });
    // An idle client that loses its server must not crash the process; the next query reports the failure.
    this.#pool.on('error', () => undefined);
  }

  get timeoutMs(): number {
    return this.#o.timeoutMs;
  }

  /** One query on a pooled connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: QueryText, values?: unknown[], timeoutMs = this.#o.timeoutMs): Promise<pg.QueryResult<R>> {
    return this.withClient((c) => c.query<R>(text, values), timeoutMs);
  }

  /**
   * Several queries on one pooled connection (a transaction, a cursor), each bounded by `timeoutMs`. A client
   * that failed or missed a deadline goes back to the pool as broken (pg-pool then closes it).
   */
  async withClient<T>(fn: (c: BoundedClient) => Promise<T>, timeoutMs = this.#o.timeoutMs): Promise<T> {
    if (this.#ending) throw new Error('the record store is closed');
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // Kept until release: pg-pool listens only while the client is idle in the pool.
    const onError = (e: Error) => void (broken ??= e);
    client.on('error', onError);
    const bounded: BoundedClient = {
      query: <R extends pg.QueryResultRow>(text: QueryText, values?: unknown[]) => {
        if (broken) return Promise.reject(broken);
        return boundedQuery<R>(client, text, values, timeoutMs).catch((e: unknown) => {
          // A server error leaves the connection usable; a lost or timed-out one does not.
          if (!(e instanceof pg.DatabaseError) || e.severity === 'FATAL' || e.severity === 'PANIC') broken ??= e as Error;
          throw e;
        });
      },
    };
    try {
      return await fn(bounded);
    } finally {
      client.removeListener('error', onError);
      client.release(broken ?? undefined);
    }
  }

  /** A connection of its own (not pooled), closed with the store. */
  async session(): Promise<PgSession> {
    if (this.#ending) throw new Error('the record store is closed');
    const s = await PgSession.open(this.#o.client, this.#o.timeoutMs);
    this.#sessions.add(s);
    return s;
  }

  /** Forgets a session (after closing or destroying it). */
  forget(s: PgSession): void {
    this.#sessions.delete(s);
  }

  /**
   * Drops a session this store gave up on and asks the server to end its process too (pg_terminate_backend,
   * matched by pid and start time, so no other session is touched). A process that is only slow, or waits on
   * a lock, or lost its client to a broken path, would otherwise keep its locks (the log's row, the log's
   * advisory lock) until the server noticed, which for a silent path is its TCP keepalive: hours. A stopped
   * process ends when it resumes. Never waits, never fails.
   */
  abandon(s: PgSession): void {
    s.destroy();
    this.forget(s);
    const pid = s.backendPid;
    if (pid === undefined || s.backendStart === undefined || this.#ending) return;
    this.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2', [pid, s.backendStart]).catch(() => undefined);
  }

  /**
   * Closes everything within `graceMs`: sessions say goodbye (or are dropped), the pool ends its idle clients;
   * a pooled client still checked out by a hung query is dropped by that query's own deadline.
   */
  async end(graceMs = 1000): Promise<void> {
    this.#ending = true;
    await Promise.all([...this.#sessions].map((s) => s.close(Math.min(graceMs, 500))));
    this.#sessions.clear();
    let timer: NodeJS.Timeout | undefined;
    const ended = this.#pool.end().catch(() => undefined);
    await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    // Whatever is left (a client checked out by a query past the grace) is dropped.
    for (const c of (this.#pool as unknown as { _clients?: pg.Client[] })._clients ?? []) destroyClient(c);
  }
}
