/**
 * The embedded record store: SQLite in WAL mode, run by a dedicated worker thread (sqlite-worker.ts). This side
 * only posts requests and matches answers, so the event loop never waits on the disk.
 */
import { Worker } from 'node:worker_threads';
import type { LoggedRecord } from '../core/access-record.js';
import type { NodeId } from '../core/merkle.js';
import { notify } from '../core/observer.js';
import { workerFile } from '../worker-file.js';
import type { ClaimedLog, ExchangeQuery, LogAppend, LogInfo, RecordQuery, RecordStore, StoredCheckpoint, StoredPersons } from './record-store.js';
import type { SqliteRequest } from './sqlite-worker.js';

/** Byte arrays come back from the thread as plain Uint8Arrays: view them as Buffers (no copy). */
const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const recordBytes = (r: LoggedRecord): LoggedRecord => ({ ...r, leafHash: bytes(r.leafHash), personsCommitment: r.personsCommitment && bytes(r.personsCommitment) });
const checkpointBytes = (c: StoredCheckpoint): StoredCheckpoint => ({ ...c, rootHash: bytes(c.rootHash) });

type Pending = { op: string; resolve: (v: unknown) => void; reject: (e: Error) => void };

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

  private constructor(path: string, busyTimeoutMs: number, observer: StoreObserver | undefined) {
    this.#observer = observer;
    this.#worker = new Worker(workerFile(import.meta.url, 'sqlite-worker'), { workerData: { path, busyTimeoutMs } });
    this.#worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: { message: string; code?: string }; seconds: number }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      notify(this.#observer, (o) => o.storeOp(p.op, m.ok, m.seconds));
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.error?.message ?? 'sqlite error'), { code: m.error?.code }));
    });
    const die = (e: Error) => {
      this.#dead = e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.on('error', die);
    this.#worker.on('exit', () => die(new Error('the record store thread has stopped')));
  }

  /** Opens (and creates) the store at `path`; resolves once the schema is in place. */
  static async open(path: string, opts: { busyTimeoutMs?: number; observer?: StoreObserver } = {}): Promise<SqliteRecordStore> {
    const s = new SqliteRecordStore(path, opts.busyTimeoutMs ?? 1000, opts.observer);
    await s.logs();
    return s;
  }

  #call<T>(req: Body<SqliteRequest>): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { op: req.op, resolve: resolve as (v: unknown) => void, reject });
      this.#worker.postMessage({ ...req, id });
    });
  }

  claimLog(logId: string, origin: string, opts: { waitMs?: number } = {}): Promise<ClaimedLog> {
    return this.#call<ClaimedLog>({ op: 'claim', logId, origin, waitMs: opts.waitMs ?? 5000 }).then((c) => ({
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
  async listBySubject(query: RecordQuery): Promise<LoggedRecord[]> {
    return (await this.#call<LoggedRecord[]>({ op: 'list', query })).map(recordBytes);
  }
  async exchangesOf(query: ExchangeQuery): Promise<LoggedRecord[]> {
    return (await this.#call<LoggedRecord[]>({ op: 'exchanges', query })).map(recordBytes);
  }
  async close(): Promise<void> {
    if (this.#dead) return;
    await this.#call({ op: 'close' }).catch(() => undefined);
    await this.#worker.terminate();
  }
}
