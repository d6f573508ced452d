/**
 * The embedded record store: SQLite in WAL mode, run by a dedicated worker thread (sqlite-worker.ts). This side
 * only posts requests and matches answers, so the event loop never waits on the disk.
 *
 * Every operation has a deadline on this side: a disk that hangs (a stuck fsync) fails the operation in time
 * (STORE_TIMEOUT, and a commit that missed it may still land: the writer reads the log again). The thread itself
 * cannot be interrupted in a system call, so later operations queue behind the hung one and fail by their own
 * deadlines until the disk answers. Errors from the thread, including those of its start (a full disk, a
 * directory it cannot write), become Errors that name the store's file and SQLite's code.
 */
import { chmodSync, closeSync, existsSync, openSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LoggedRecord } from '../core/access-record.js';
import type { NodeId } from '../core/merkle.js';
import { notify } from '../core/observer.js';
import { workerFile } from '../worker-file.js';
import { describeStoreError, storeTimeout } from './store-errors.js';
import type { ClaimedLog, ExchangeQuery, LogAppend, LogInfo, NewPurge, PurgeResult, RecordPersons, RecordQuery, RecordStore, SnapshotReader, StoredCheckpoint, StoredPersons, StoredPurge } from './record-store.js';
import type { SnapshotCall, SqliteRequest } from './sqlite-worker.js';
import { SCHEMA_ERROR, SchemaError, type MigrateMode, type MigrationReport } from './migrations.js';

/** Byte arrays come back from the thread as plain Uint8Arrays: view them as Buffers (no copy). */
const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const recordBytes = (r: LoggedRecord): LoggedRecord => ({ ...r, leafHash: bytes(r.leafHash), personsCommitment: r.personsCommitment && bytes(r.personsCommitment) });
const checkpointBytes = (c: StoredCheckpoint): StoredCheckpoint => ({ ...c, rootHash: bytes(c.rootHash) });

type Pending = { op: string; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined };

/** Operations that read a whole log or store (verification): bounded by ten minutes, not a request's deadline. */
const LONG_OPS = new Set(['persons', 'snapshot', 'snapshot-begin', 'purge']);

/**
 * SQLite's own words for the result codes a store meets at start (sqlite3_errstr). A SqliteError is not a native
 * Error, so crossing from the store's thread it arrives as a plain object holding only its code: without this,
 * a full disk at first start printed `linkgw: [object Object]`.
 */
const SQLITE_TEXT: [RegExp, string][] = [
  [/^SQLITE_FULL/, 'database or disk is full'],
  [/^SQLITE_CANTOPEN/, 'unable to open database file'],
  [/^SQLITE_READONLY/, 'attempt to write a readonly database'],
  [/^SQLITE_PERM/, 'access permission denied'],
  [/^SQLITE_NOTADB/, 'file is not a database'],
  [/^SQLITE_CORRUPT/, 'database disk image is malformed'],
  [/^SQLITE_BUSY/, 'database is locked'],
  [/^SQLITE_NOMEM/, 'out of memory'],
  [/^SQLITE_IOERR/, 'disk I/O error'],
];

/** An error from the store's thread (an Error, or the plain object a SqliteError becomes crossing threads). */
function storeFailure(path: string, e: unknown, what = 'failed'): Error {
  const code = (e as { code?: unknown } | null)?.code;
  const message = (e as { message?: unknown } | null)?.message;
  // The schema does not fit this code: its message names the store already, and it is a configuration error.
  if (code === SCHEMA_ERROR && typeof message === 'string') return new SchemaError(message, { cause: e });
  const text = typeof message === 'string' && message ? describeStoreError(e) : `${(typeof code === 'string' && SQLITE_TEXT.find(([re]) => re.test(code))?.[1]) || 'failed'} (${String(code ?? describeStoreError(e))})`;
  return Object.assign(new Error(`the SQLite record store ${path} ${what}: ${text}`, { cause: e }), typeof code === 'string' ? { code } : {});
}

/** Told how long each operation took inside the store's thread (measured there). */
export interface StoreObserver {
  storeOp(op: string, ok: boolean, seconds: number): void;
}
type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export class SqliteRecordStore implements RecordStore {
  readonly kind = 'sqlite' as const;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #dead: Error | undefined;

  readonly #observer: StoreObserver | undefined;
  readonly #timeoutMs: number;
  #started = false;
  /** Persons in runs not merged into the index, as the store's thread last said. */
  #backlog = 0;

  private constructor(readonly path: string, busyTimeoutMs: number, timeoutMs: number, observer: StoreObserver | undefined, migrate: MigrateMode, readonly: boolean, indexBehind: boolean) {
    this.#observer = observer;
    this.#timeoutMs = timeoutMs;
    this.#worker = new Worker(workerFile(import.meta.url, 'sqlite-worker'), { workerData: { path, busyTimeoutMs, migrate, readonly, indexBehind } });
    this.#worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: { message: string; code?: string }; seconds: number; backlog?: number }) => {
      this.#started = true;
      if (m.backlog !== undefined) this.#backlog = m.backlog;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      notify(this.#observer, (o) => o.storeOp(p.op, m.ok, m.seconds));
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.error?.message ?? 'sqlite error'), { code: m.error?.code }));
    });
    const die = (e: Error) => {
      this.#dead ??= e;
      for (const p of this.#pending.values()) (clearTimeout(p.timer), p.reject(this.#dead));
      this.#pending.clear();
    };
    // A thread that fails before its first answer failed to open the store (its error names SQLite's code).
    this.#worker.on('error', (e: unknown) => die(storeFailure(path, e, this.#started ? 'failed' : 'could not be opened')));
    this.#worker.on('exit', () => die(new Error(`the SQLite record store ${path}: its thread has stopped`)));
  }

  /**
   * Opens the store at `path`; resolves once the schema is in place (`migrate`: `auto`, the default, applies
   * pending steps; `verify` refuses a store with steps pending). `timeoutMs` bounds each operation (default 3000).
   *
   * `create` says what a missing file means: `if-new` (the gateway) makes a new store only where no log was ever
   * written next to it — a missing store whose logs' writer-lock files are still there was removed or lost, and
   * starting new logs in its place would silently begin the record history again at 0, so it is refused;
   * `never` (verify, purge, seal: commands that must find the store) refuses any missing file; `always` (`linkgw
   * migrate`: an operator making a store on purpose). `readonly` opens it read-only (verify, checkpoints).
   */
  static async open(
    path: string,
    opts: {
      busyTimeoutMs?: number;
      timeoutMs?: number;
      observer?: StoreObserver;
      migrate?: MigrateMode;
      onMigrated?: (r: MigrationReport) => void;
      create?: 'if-new' | 'never' | 'always';
      readonly?: boolean;
      /** Merge persons runs into the index behind the commits (default), or only on `flushIndex` (tests). */
      personIndex?: 'behind-commits' | 'on-flush';
    } = {},
  ): Promise<SqliteRecordStore> {
    const readonly = opts.readonly ?? false;
    const create = readonly ? 'never' : (opts.create ?? 'if-new');
    if (create !== 'always' && !existsSync(path)) {
      if (create === 'never') throw new SchemaError(`the SQLite record store ${path} does not exist (nothing to read: check LINKGW_DATA_DIR, or restore it from a backup)`);
      const traces = writerLocksOf(path);
      if (traces.length > 0)
        throw new SchemaError(
          `the SQLite record store ${path} is missing, but logs were written there before (${traces.join(', ')}): restore it from a backup (README, "Backup and restore"); to start new logs there on purpose, run \`linkgw migrate\` first`,
        );
    }
    if (!readonly) privateFiles(path);
    const s = new SqliteRecordStore(path, opts.busyTimeoutMs ?? 1000, opts.timeoutMs ?? 3000, opts.observer, readonly ? 'verify' : (opts.migrate ?? 'auto'), readonly, opts.personIndex !== 'on-flush');
    try {
      // Migrations may take longer than an operation's deadline (an index on a large table).
      const report = await s.#call<MigrationReport>({ op: 'migrations' }, 300_000);
      opts.onMigrated?.(report);
    } catch (e) {
      await s.#worker.terminate().catch(() => undefined);
      throw e;
    }
    return s;
  }

  personIndexBacklog(): number {
    return this.#backlog;
  }

  flushIndex(): Promise<void> {
    return this.#call({ op: 'flush-index' }, 600_000);
  }

  /** A cheap real check that the store is still there and answers: its files are the ones opened, and one read. */
  check(): Promise<void> {
    return this.#call({ op: 'check' });
  }

  #call<T>(req: Body<SqliteRequest>, extraMs = 0): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    const ms = (LONG_OPS.has(req.op) ? 600_000 : this.#timeoutMs) + extraMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.#pending.delete(id)) return;
        notify(this.#observer, (o) => o.storeOp(req.op, false, ms / 1000));
        reject(storeTimeout(`an operation (${req.op})`, ms));
      }, ms);
      this.#pending.set(id, { op: req.op, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#worker.postMessage({ ...req, id });
    });
  }

  claimLog(logId: string, origin: string, opts: { waitMs?: number } = {}): Promise<ClaimedLog> {
    // The thread waits for the lock itself: the deadline starts after that wait.
    const waitMs = opts.waitMs ?? 5000;
    return this.#call<ClaimedLog>({ op: 'claim', logId, origin, waitMs }, waitMs).then((c) => ({
      ...c,
      edge: c.edge.map(bytes),
      latest: c.latest && checkpointBytes(c.latest),
    }));
  }
  append(append: LogAppend): Promise<void> {
    return this.#call({ op: 'commit', append });
  }
  addCosignatures(logId: string, size: number, lines: string): Promise<boolean> {
    return this.#call({ op: 'cosign', logId, size, lines });
  }
  logs(): Promise<LogInfo[]> {
    return this.#call({ op: 'logs' });
  }
  async latestCheckpoints(): Promise<StoredCheckpoint[]> {
    return (await this.#call<StoredCheckpoint[]>({ op: 'latest' })).map(checkpointBytes);
  }
  async checkpoints(logId: string): Promise<StoredCheckpoint[]> {
    return (await this.#call<StoredCheckpoint[]>({ op: 'checkpoints', logId })).map(checkpointBytes);
  }
  async nodes(logId: string, ids: readonly NodeId[]): Promise<Buffer[]> {
    const all = bytes(await this.#call<Uint8Array>({ op: 'nodes', logId, ids: [...ids] }));
    return ids.map((_, i) => all.subarray(i * 32, i * 32 + 32));
  }
  async recordById(recordId: string): Promise<LoggedRecord | null> {
    const r = await this.#call<LoggedRecord | null>({ op: 'record', recordId });
    return r && recordBytes(r);
  }
  async readLeaves(logId: string, from: number, to: number, limit: number): Promise<LoggedRecord[]> {
    return (await this.#call<LoggedRecord[]>({ op: 'leaves', logId, from, to, limit })).map(recordBytes);
  }
  async storedPersons(logId?: string): Promise<StoredPersons> {
    const p = await this.#call<StoredPersons>({ op: 'persons', logId });
    for (const v of p.batch.values()) v.commitment = bytes(v.commitment);
    return p;
  }
  /** One read transaction on a second connection in the store's thread (one snapshot at a time). */
  async readSnapshot<T>(fn: (r: SnapshotReader) => Promise<T>): Promise<T> {
    await this.#call({ op: 'snapshot-begin' });
    const call = <R>(c: SnapshotCall) => this.#call<R>({ op: 'snapshot', call: c });
    const reader: SnapshotReader = {
      logs: () => call({ what: 'logs' }),
      checkpoints: async (logId) => (await call<StoredCheckpoint[]>({ what: 'checkpoints', logId })).map(checkpointBytes),
      purges: async (logId) => (await call<StoredPurge[]>({ what: 'purges', logId })).map((p) => ({ ...p, rootHash: bytes(p.rootHash), frontier: p.frontier.map(bytes) })),
      nodes: async (logId, ids) => {
        const all = bytes(await call<Uint8Array>({ what: 'nodes', logId, ids: [...ids] }));
        return ids.map((_, i) => all.subarray(i * 32, i * 32 + 32));
      },
      readLeaves: async (logId, from, to, limit) => (await call<LoggedRecord[]>({ what: 'leaves', logId, from, to, limit })).map(recordBytes),
      persons: async (logId, from, to) => {
        const m = await call<Map<number, RecordPersons>>({ what: 'persons', logId, from, to });
        for (const [k, v] of m) m.set(k, { ...v, commitment: bytes(v.commitment) });
        return m;
      },
      firstLeafFrom: (logId, from, time) => call({ what: 'first-leaf', logId, from, time }),
    };
    try {
      return await fn(reader);
    } finally {
      await this.#call({ op: 'snapshot-end' }).catch(() => undefined);
    }
  }
  purge(p: NewPurge): Promise<PurgeResult | null> {
    return this.#call({ op: 'purge', purge: p });
  }
  async listBySubject(query: RecordQuery): Promise<LoggedRecord[]> {
    return (await this.#call<LoggedRecord[]>({ op: 'list', query })).map(recordBytes);
  }
  async exchangesOf(query: ExchangeQuery): Promise<LoggedRecord[]> {
    return (await this.#call<LoggedRecord[]>({ op: 'exchanges', query })).map(recordBytes);
  }
  /** Closes the store; a thread stuck on the disk is left behind after `graceMs` (the process may exit). */
  async close(graceMs = 500): Promise<void> {
    if (this.#dead) return;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([this.#call({ op: 'close' }).catch(() => undefined), grace]);
    this.#worker.unref();
    await Promise.race([this.#worker.terminate(), grace]);
    clearTimeout(timer);
    this.#dead ??= new Error(`the SQLite record store ${this.path} is closed`);
  }
}

/** The writer-lock files of logs written in the store at `path` (`<store>.<log>.writer-lock`, sqlite-worker.ts). */
function writerLocksOf(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  try {
    return readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.writer-lock'));
  } catch {
    return [];
  }
}

/**
 * The SQLite store holds who asked about whom: its file is made mode 0600 before SQLite opens it, as the
 * keyring is (SQLite gives its -wal and -shm files the database file's mode), and a store made earlier with
 * wider permissions is narrowed. Best effort: a directory that does not exist or cannot be written is left for
 * the store to report, in its own words.
 */
function privateFiles(path: string): void {
  try {
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f) && (statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
  } catch {
    // The store's own open names the problem (the file, SQLite's code).
  }
}
