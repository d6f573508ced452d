/**
 * The SQLite record store's thread: owns the better-sqlite3 connection so that its synchronous work never
 * blocks the gateway's event loop. WAL journal, synchronous=FULL: a commit returns only after the WAL is
 * fsynced, which is what "durable before release" needs.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { Outcome, type ChainedRecord, type ChainedRecordWithSubjects, type ChainLink, type Seal } from '../core/access-record.js';
import type { ExchangeQuery, RecordQuery } from './record-store.js';
import { RECORD_COLUMNS, schemaFor, recordToValues, rowToLink, rowToRecord, rowToSeal, type LinkRow, type RecordRow, type SealRow } from './schema.js';

export type SqliteRequest =
  | { id: number; op: 'commit'; records: ChainedRecordWithSubjects[]; seal: Seal; links?: ChainLink[] }
  | { id: number; op: 'head'; chainId: string }
  | { id: number; op: 'heads' }
  | { id: number; op: 'allLinks' }
  | { id: number; op: 'list'; query: RecordQuery }
  | { id: number; op: 'exchanges'; query: ExchangeQuery }
  | { id: number; op: 'chains' }
  | { id: number; op: 'readChain'; chainId: string }
  | { id: number; op: 'close' };

const { path, busyTimeoutMs } = workerData as { path: string; busyTimeoutMs: number };
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
for (const s of schemaFor('sqlite')) db.exec(s);

const insertRecord = db.prepare(
  `INSERT INTO access_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`,
);
const insertSubject = db.prepare('INSERT INTO record_subjects (subject, record_id) VALUES (?, ?)');
const insertSeal = db.prepare(
  'INSERT INTO record_seals (chain_id, last_seq, head_hash, signature, key_id, sealed_at) VALUES (?, ?, ?, ?, ?, ?)',
);
const insertLink = db.prepare('INSERT INTO record_chain_links (chain_id, predecessor, last_seq, head_hash) VALUES (?, ?, ?, ?)');
const commit = db.transaction((records: ChainedRecordWithSubjects[], seal: Seal, links: ChainLink[] | undefined) => {
  for (const l of links ?? []) insertLink.run(seal.chainId, l.predecessor, l.lastSeq, l.headHash);
  for (const r of records) {
    insertRecord.run(recordToValues(r));
    if (r.subjects) for (const subject of r.subjects) insertSubject.run(subject, r.recordId);
  }
  insertSeal.run(seal.chainId, seal.lastSeq, seal.headHash, seal.signature, seal.keyId, seal.sealedAt);
});

function list(q: RecordQuery): ChainedRecord[] {
  // The subject's own records, and the batch records that name it, merged newest first.
  const where: string[] = ['r.non_disclosable = 0'];
  const args: (string | number)[] = [];
  if (q.from !== null) (where.push('r.requested_at >= ?'), args.push(q.from));
  if (q.to !== null) (where.push('r.requested_at < ?'), args.push(q.to));
  if (q.after) {
    where.push('(r.requested_at, r.chain_id, r.seq) < (?, ?, ?)');
    args.push(q.after.requestedAt, q.after.chainId, q.after.seq);
  }
  const filter = where.join(' AND ');
  const order = 'ORDER BY requested_at DESC, chain_id DESC, seq DESC LIMIT ?';
  const rows = db
    .prepare(
      `SELECT * FROM (
         SELECT * FROM (SELECT r.* FROM access_records r WHERE r.subject = ? AND ${filter} ${order.replace(/(requested_at|chain_id|seq) /g, 'r.$1 ')})
         UNION ALL
         SELECT * FROM (SELECT r.* FROM access_records r WHERE r.record_id IN (SELECT s.record_id FROM record_subjects s WHERE s.subject = ?) AND ${filter} ${order.replace(/(requested_at|chain_id|seq) /g, 'r.$1 ')})
       ) ${order}`,
    )
    .all(q.subject, ...args, q.limit, q.subject, ...args, q.limit, q.limit) as RecordRow[];
  return rows.map(rowToRecord);
}

function subjectsOfChain(chainId: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const rows = db
    .prepare('SELECT s.record_id, s.subject FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id WHERE r.chain_id = ?')
    .all(chainId) as { record_id: string; subject: string }[];
  for (const r of rows) {
    let l = out.get(r.record_id);
    if (!l) out.set(r.record_id, (l = []));
    l.push(r.subject);
  }
  return out;
}

function handle(m: SqliteRequest): unknown {
  switch (m.op) {
    case 'commit':
      commit(m.records, m.seal, m.links);
      return null;
    case 'allLinks':
      return db.prepare('SELECT chain_id, predecessor, last_seq, head_hash FROM record_chain_links ORDER BY chain_id, predecessor').all();
    case 'heads':
      return (
        db
          .prepare(
            // A skip scan over the primary key: one index probe per chain, not a read of every record.
            `WITH RECURSIVE c(chain_id) AS (
               SELECT MIN(chain_id) FROM access_records
               UNION ALL
               SELECT (SELECT MIN(a.chain_id) FROM access_records a WHERE a.chain_id > c.chain_id) FROM c WHERE c.chain_id IS NOT NULL
             )
             SELECT a.chain_id AS predecessor, a.seq AS last_seq, a.hash AS head_hash
             FROM c JOIN access_records a ON a.chain_id = c.chain_id AND a.seq = (SELECT MAX(seq) FROM access_records WHERE chain_id = c.chain_id)
             WHERE NOT EXISTS (SELECT 1 FROM record_chain_links l WHERE l.predecessor = a.chain_id AND l.last_seq = a.seq)
             ORDER BY 1`,
          )
          .all() as LinkRow[]
      ).map(rowToLink);
    case 'head': {
      const r = db.prepare('SELECT seq, hash FROM access_records WHERE chain_id = ? ORDER BY seq DESC LIMIT 1').get(m.chainId) as
        | { seq: number; hash: string }
        | undefined;
      return r ? { lastSeq: r.seq, headHash: r.hash } : null;
    }
    case 'list':
      return list(m.query);
    case 'exchanges':
      return (
        db
          .prepare(
            `SELECT * FROM access_records WHERE subject = ? AND requested_at >= ? AND outcome = ${Outcome.PROVIDED} AND (requester = ? OR provider = ?)
             ORDER BY requested_at DESC, chain_id DESC, seq DESC LIMIT ?`,
          )
          .all(m.query.subject, m.query.since ?? Number.MIN_SAFE_INTEGER, m.query.agency, m.query.agency, m.query.limit) as RecordRow[]
      ).map(rowToRecord);
    case 'chains':
      return (db.prepare('SELECT DISTINCT chain_id FROM access_records UNION SELECT DISTINCT chain_id FROM record_seals UNION SELECT DISTINCT chain_id FROM record_chain_links ORDER BY 1').all() as {
        chain_id: string;
      }[]).map((r) => r.chain_id);
    case 'readChain':
      return {
        rows: (db.prepare('SELECT * FROM access_records WHERE chain_id = ? ORDER BY seq').all(m.chainId) as RecordRow[]).map(rowToRecord),
        seals: (db.prepare('SELECT * FROM record_seals WHERE chain_id = ? ORDER BY last_seq').all(m.chainId) as SealRow[]).map(rowToSeal),
        subjects: subjectsOfChain(m.chainId),
        links: (db.prepare('SELECT predecessor, last_seq, head_hash FROM record_chain_links WHERE chain_id = ? ORDER BY predecessor').all(m.chainId) as LinkRow[]).map(rowToLink),
      };
    case 'close':
      db.close();
      return null;
  }
}

parentPort!.on('message', (m: SqliteRequest) => {
  // Each answer carries the time the operation took in this thread, for the gateway's metrics.
  const started = performance.now();
  try {
    const value = handle(m);
    parentPort!.postMessage({ id: m.id, ok: true, value, seconds: (performance.now() - started) / 1000 });
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ id: m.id, ok: false, error: { message: err.message, code: err.code }, seconds: (performance.now() - started) / 1000 });
  }
  if (m.op === 'close') parentPort!.close();
});
