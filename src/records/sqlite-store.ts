/**
 * The embedded record store: SQLite in WAL mode, run by a dedicated worker thread (sqlite-worker.ts). This side
 * only posts requests and matches answers, so the event loop never waits on the disk.
 */
import { Worker } from 'node:worker_threads';
import type { ChainedRecord, ChainedRecordWithSubjects, ChainLink, Seal } from '../core/access-record.js';
import { notify } from '../core/observer.js';
import { workerFile } from '../worker-file.js';
import type { ExchangeQuery, RecordQuery, RecordStore, StoredChain } from './record-store.js';
import { groupLinks, type LinkRow } from './schema.js';
import type { SqliteRequest } from './sqlite-worker.js';

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
    await s.chainIds();
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

  commit(records: readonly ChainedRecordWithSubjects[], seal: Seal, links?: readonly ChainLink[]): Promise<void> {
    return this.#call({ op: 'commit', records: records as ChainedRecordWithSubjects[], seal, ...(links?.length ? { links: [...links] } : {}) });
  }
  head(chainId: string): Promise<{ lastSeq: number; headHash: string } | null> {
    return this.#call({ op: 'head', chainId });
  }
  listBySubject(query: RecordQuery): Promise<ChainedRecord[]> {
    return this.#call({ op: 'list', query });
  }
  exchangesOf(query: ExchangeQuery): Promise<ChainedRecord[]> {
    return this.#call({ op: 'exchanges', query });
  }

  async allLinks(): Promise<Map<string, ChainLink[]>> {
    return groupLinks(await this.#call<(LinkRow & { chain_id: string })[]>({ op: 'allLinks' }));
  }

  heads(): Promise<ChainLink[]> {
    return this.#call({ op: 'heads' });
  }

  chainIds(): Promise<string[]> {
    return this.#call({ op: 'chains' });
  }
  readChain(chainId: string): Promise<StoredChain> {
    return this.#call({ op: 'readChain', chainId });
  }
  async close(): Promise<void> {
    if (this.#dead) return;
    await this.#call({ op: 'close' }).catch(() => undefined);
    await this.#worker.terminate();
  }
}
