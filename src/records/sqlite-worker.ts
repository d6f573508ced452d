/**
 * The SQLite record store's thread: owns the better-sqlite3 connection so that its synchronous work never
 * blocks the gateway's event loop. WAL journal, synchronous=FULL: a commit returns only after the WAL is
 * fsynced, which is what "durable before release" needs.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import type { ChainedRecord, Seal } from '../core/access-record.js';
import type { RecordQuery } from './record-store.js';
import { RECORD_COLUMNS, SCHEMA, recordToValues, rowToRecord, rowToSeal, type RecordRow, type SealRow } from './schema.js';

export type SqliteRequest =
  | { id: number; op: 'commit'; records: ChainedRecord[]; seal: Seal }
  | { id: number; op: 'head'; chainId: string }
  | { id: number; op: 'list'; query: RecordQuery }
  | { id: number; op: 'chains' }
  | { id: number; op: 'readChain'; chainId: string }
  | { id: number; op: 'close' };

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
for (const s of SCHEMA) db.exec(s);

const insertRecord = db.prepare(
  `INSERT INTO access_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`,
);
const insertSeal = db.prepare(
  'INSERT INTO record_seals (chain_id, last_seq, head_hash, signature, key_id, sealed_at) VALUES (?, ?, ?, ?, ?, ?)',
);
const commit = db.transaction((records: ChainedRecord[], seal: Seal) => {
  for (const r of records) insertRecord.run(recordToValues(r));
  insertSeal.run(seal.chainId, seal.lastSeq, seal.headHash, seal.signature, seal.keyId, seal.sealedAt);
});

function list(q: RecordQuery): ChainedRecord[] {
  const where = ['subject = ?', 'non_disclosable = 0'];
  const args: (string | number)[] = [q.subject];
  if (q.from !== null) (where.push('requested_at >= ?'), args.push(q.from));
  if (q.to !== null) (where.push('requested_at < ?'), args.push(q.to));
  if (q.after) {
    where.push('(requested_at, chain_id, seq) < (?, ?, ?)');
    args.push(q.after.requestedAt, q.after.chainId, q.after.seq);
  }
  args.push(q.limit);
  const rows = db
    .prepare(`SELECT * FROM access_records WHERE ${where.join(' AND ')} ORDER BY requested_at DESC, chain_id DESC, seq DESC LIMIT ?`)
    .all(...args) as RecordRow[];
  return rows.map(rowToRecord);
}

function handle(m: SqliteRequest): unknown {
  switch (m.op) {
    case 'commit':
      commit(m.records, m.seal);
      return null;
    case 'head': {
      const r = db.prepare('SELECT seq, hash FROM access_records WHERE chain_id = ? ORDER BY seq DESC LIMIT 1').get(m.chainId) as
        | { seq: number; hash: string }
        | undefined;
      return r ? { lastSeq: r.seq, headHash: r.hash } : null;
    }
    case 'list':
      return list(m.query);
    case 'chains':
      return (db.prepare('SELECT DISTINCT chain_id FROM access_records UNION SELECT DISTINCT chain_id FROM record_seals ORDER BY 1').all() as {
        chain_id: string;
      }[]).map((r) => r.chain_id);
    case 'readChain':
      return {
        rows: (db.prepare('SELECT * FROM access_records WHERE chain_id = ? ORDER BY seq').all(m.chainId) as RecordRow[]).map(rowToRecord),
        seals: (db.prepare('SELECT * FROM record_seals WHERE chain_id = ? ORDER BY last_seq').all(m.chainId) as SealRow[]).map(rowToSeal),
      };
    case 'close':
      db.close();
      return null;
  }
}

parentPort!.on('message', (m: SqliteRequest) => {
  try {
    parentPort!.postMessage({ id: m.id, ok: true, value: handle(m) });
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ id: m.id, ok: false, error: { message: err.message, code: err.code } });
  }
  if (m.op === 'close') parentPort!.close();
});
