/**
 * What a failed append tells the record writer, whichever store it came from. The writer must tell apart:
 *
 * - `conflict`: the log's size was not the one the append started from (LOG_CONFLICT). Someone else wrote the
 *   log, unless it was a commit of this writer whose answer was lost (the writer checks).
 * - `rejected`: the store refused the records' content (a constraint, a value it cannot hold, a batch too large
 *   for one statement), and said so: nothing landed, and the same records without the culprit would commit.
 *   The writer isolates the culprit (issue 8: no single record can fail a shared commit).
 * - `not-committed`: the append failed before its commit was sent (or the server rolled it back): nothing
 *   landed, and trying again on a fresh connection is safe.
 * - `gone`: the store's file was removed or replaced (STORE_GONE): whatever it took is lost with it.
 * - `uncertain`: the commit was sent and its answer never came (a connection lost, a deadline missed). It may
 *   land, now or when a hung server process resumes; the log's compare-and-set on its size guarantees that at
 *   most one of this writer's attempts at a position does.
 */
import { LOG_CONFLICT, LOG_LOCKED } from './record-store.js';

export type AppendFailure = 'conflict' | 'rejected' | 'not-committed' | 'uncertain' | 'gone';

/**
 * The store is not the one the log lives in any more (its file was removed or replaced under the gateway): what
 * it takes now is lost with it. The writer stops for good (not ready, every request UNAVAILABLE) and never
 * starts a new log in its place; an operator restores the store and restarts the gateway.
 */
export const STORE_GONE = 'STORE_GONE';

export function storeGone(message: string): Error {
  return Object.assign(new Error(message), { code: STORE_GONE });
}

/** A store operation missed its client-side deadline (a PostgreSQL connection was closed for it). */
export const STORE_TIMEOUT = 'STORE_TIMEOUT';

export function storeTimeout(what: string, ms: number): Error {
  return Object.assign(new Error(`the record store did not answer ${what} within ${ms} ms`), { code: STORE_TIMEOUT });
}

/** Set on an error by a store that knows its commit was never sent (so it cannot have landed). */
export const NOT_COMMITTED = Symbol('linkgw.notCommitted');

export function notCommitted<E>(e: E): E {
  if (e !== null && typeof e === 'object') (e as { [NOT_COMMITTED]?: boolean })[NOT_COMMITTED] = true;
  return e;
}

/**
 * PostgreSQL SQLSTATE classes that name the content of a statement: 22 data exception (a NUL byte, a value
 * out of range), 23 integrity constraint violation (a repeated key), 54 program limit exceeded (an index row or
 * an array too large: a smaller batch fits).
 */
const PG_CONTENT_CLASSES = new Set(['22', '23', '54']);
/** SQLite result codes that name the content: a constraint, a value too big or of the wrong type. */
const SQLITE_CONTENT = /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH)/;

export function classifyAppendFailure(e: unknown): AppendFailure {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === LOG_CONFLICT) return 'conflict';
  if (code === STORE_GONE) return 'gone';
  if (typeof code === 'string') {
    if (/^[0-9A-Z]{5}$/.test(code) && PG_CONTENT_CLASSES.has(code.slice(0, 2))) return 'rejected';
    if (SQLITE_CONTENT.test(code)) return 'rejected';
  }
  if (code === LOG_LOCKED) return 'not-committed';
  if ((e as { [NOT_COMMITTED]?: boolean } | null)?.[NOT_COMMITTED]) return 'not-committed';
  return 'uncertain';
}

/** A short description of a store error for logs and start-up messages: its message and code, never `[object Object]`. */
export function describeStoreError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  if (e !== null && typeof e === 'object') {
    const o = e as { message?: unknown; code?: unknown };
    const parts = [typeof o.message === 'string' ? o.message : undefined, typeof o.code === 'string' ? `(${o.code})` : undefined].filter(Boolean);
    if (parts.length) return parts.join(' ');
    try {
      return JSON.stringify(e);
    } catch {
      return Object.prototype.toString.call(e);
    }
  }
  return String(e);
}
