/**
 * The SQLite record store's thread: owns the better-sqlite3 connection so that its synchronous work never
 * blocks the gateway's event loop. WAL journal, synchronous=FULL: a commit returns only after the WAL is
 * fsynced, which is what "durable before release" needs.
 *
 * One writer per log: a log's writer holds an exclusive lock on a small SQLite file next to the store
 * (`<store>.<log>.writer-lock`), taken with BEGIN EXCLUSIVE and never released until the store closes or the
 * process ends (the operating system drops the lock with the process, so a crash leaves no stale lock). The
 * records file itself stays in WAL mode with normal locking, so `linkgw records verify` can read it while the
 * gateway writes.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, statSync, type BigIntStats } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Outcome, type LoggedRecord } from '../core/access-record.js';
import { rangeNodes, rootOfLeafHashes, type NodeId } from '../core/merkle.js';
import { subjectsCommitment } from '../core/record-leaf.js';
import { runLength, runSubjects, subjectKeyBytes, type PersonsRun } from '../core/persons-run.js';
import { holds, UnmergedRuns, type RunPlace } from './unmerged-runs.js';
import { mergePersons, storedRunCommitment } from './run-persons.js';
import { LOG_CONFLICT, LOG_LOCKED, storeError, type ClaimedLog, type ExchangeQuery, type LogAppend, type NewPurge, type PurgeResult, type RecordPersons, type RecordQuery, type StoredPersons } from './record-store.js';
import { leavesUnder, LOWEST_STORED_LEVEL, RECORD_COLUMNS, recordToValues, rowToCheckpoint, rowToPurge, rowToRecord, type CheckpointRow, type LogInfo, type PurgeRow, type RecordRow, type StoredCheckpoint } from './schema.js';
import { migrateSqlite } from './migrate-sqlite.js';
import { storeGone } from './store-errors.js';
import type { MigrateMode } from './migrations.js';

export type SqliteRequest =
  | { id: number; op: 'claim'; logId: string; origin: string; waitMs: number }
  | { id: number; op: 'commit'; append: LogAppend }
  | { id: number; op: 'cosign'; logId: string; size: number; lines: string }
  | { id: number; op: 'logs' }
  | { id: number; op: 'latest' }
  | { id: number; op: 'checkpoints'; logId: string }
  | { id: number; op: 'nodes'; logId: string; ids: NodeId[] }
  | { id: number; op: 'record'; recordId: string }
  | { id: number; op: 'leaves'; logId: string; from: number; to: number; limit: number }
  | { id: number; op: 'persons'; logId: string | undefined }
  | { id: number; op: 'list'; query: RecordQuery }
  | { id: number; op: 'exchanges'; query: ExchangeQuery }
  | { id: number; op: 'snapshot-begin' }
  | { id: number; op: 'snapshot-end' }
  | { id: number; op: 'snapshot'; call: SnapshotCall }
  | { id: number; op: 'purge'; purge: NewPurge }
  | { id: number; op: 'migrations' }
  | { id: number; op: 'check' }
  | { id: number; op: 'flush-index' }
  | { id: number; op: 'close' };

export type SnapshotCall =
  | { what: 'logs' }
  | { what: 'checkpoints'; logId: string }
  | { what: 'purges'; logId: string }
  | { what: 'nodes'; logId: string; ids: NodeId[] }
  | { what: 'leaves'; logId: string; from: number; to: number; limit: number }
  | { what: 'persons'; logId: string; from: number; to: number }
  | { what: 'first-leaf'; logId: string; from: number; time: number };

const { path, busyTimeoutMs, migrate, readonly, indexBehind } = workerData as { path: string; busyTimeoutMs: number; migrate: MigrateMode; readonly: boolean; indexBehind: boolean };
// A reader (records verify, checkpoints) opens the file read-only: it can neither create a missing store nor
// change one. (The main side refuses a missing file before this thread starts; `fileMustExist` is the backstop.)
const db = new Database(path, readonly ? { readonly: true, fileMustExist: true } : {});
if (!readonly) db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
// The schema first (migrate-sqlite.ts): the statements below are prepared against its tables. A SchemaError
// (a newer store, a pending step under `verify`) ends the thread before its first answer, keeping its code.
const migrated = migrateSqlite(db, readonly ? 'verify' : migrate, path);

/**
 * The files this connection writes, as they were when it opened them (device and inode). A store whose file is
 * removed or replaced under a running gateway (a replaced volume, an operator's mistake) goes on taking commits
 * into the open, unlinked file: every record "committed" after that is lost with the last descriptor. So before
 * and after every commit, and on every idle check, the paths must still name the files this connection holds;
 * otherwise the store is gone (STORE_GONE): the commit fails, nothing is released, and the gateway says not ready.
 */
const statOf = (p: string): BigIntStats | undefined => statSync(p, { bigint: true, throwIfNoEntry: false });
const sameFile = (a: BigIntStats | undefined, b: BigIntStats | undefined) => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
const opened = { db: statOf(path), wal: readonly ? undefined : statOf(`${path}-wal`) };

function checkFiles(): void {
  if (!sameFile(statOf(path), opened.db)) throw storeGone(`the SQLite record store ${path} is no longer the file this gateway opened (removed or replaced)`);
  if (readonly) return;
  // The WAL exists from the first write of a WAL-mode connection until the last connection closes.
  const wal = statOf(`${path}-wal`);
  if (opened.wal === undefined) opened.wal = wal;
  else if (!sameFile(wal, opened.wal)) throw storeGone(`the write-ahead log of the SQLite record store ${path} was removed or replaced`);
}

const bytes = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

const insertRecord = db.prepare(`INSERT INTO access_records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})`);
const insertRun = db.prepare('INSERT INTO person_runs (log_id, leaf_index, record_id, persons) VALUES (?, ?, ?, ?)');
const runAt = db.prepare('SELECT persons FROM person_runs WHERE log_id = ? AND leaf_index = ?').pluck();
const indexPerson = db.prepare('INSERT OR IGNORE INTO record_subjects (subject, record_id) VALUES (?, ?)');
const moveFrontier = db.prepare(
  'INSERT INTO person_index_frontier (log_id, below_leaf) VALUES (?, ?) ON CONFLICT (log_id) DO UPDATE SET below_leaf = excluded.below_leaf WHERE excluded.below_leaf > person_index_frontier.below_leaf',
);

/**
 * The person index behind the commits (ADR 0104). A commit writes each batch record's persons as one run (one
 * row, one sequential write); this thread merges the runs into `record_subjects` in commit order, in key order
 * within a chunk, when no commit has come for INDEX_QUIET_MS: while bulk issuance streams in, commits keep the
 * thread and the runs wait (lookups read them through their Bloom filters); in the gaps, a chunk of about
 * INDEX_BUSY_MS of merging (a larger one once the store has been quiet for a second, as merging more rows per
 * transaction touches each index page fewer times). Past INDEX_BACKLOG waiting persons a commit first merges a
 * chunk itself: the backlog, and the filters' memory (~1.25 bytes a person), stay bounded, and bulk issuance
 * then slows to the pace of the index.
 */
const INDEX_CHUNK_QUIET = 100_000;
const INDEX_QUIET_MS = 20;
const INDEX_BACKLOG = 16_000_000;
/**
 * How long one chunk may hold the thread while traffic flows (ms), and once the store has been quiet for a
 * second. A chunk's persons follow from the merge rate measured on the chunks before: a merge slows as the
 * index grows (its keys are random), from ~250,000 persons/s into a small index to ~40,000/s into 10 M, so a
 * fixed count would hold the thread for half a second at a time once the index is large (measured: the mixed
 * profile after a bulk run, p50 6.7 s).
 */
const INDEX_BUSY_MS = 10;
const INDEX_QUIET_CHUNK_MS = 500;
/** Persons merged per millisecond, as measured (a moving average); a guess before the first chunk. */
let mergeRate = 50;
/** When the last commit was made, and the last lookup served (performance.now()). */
let lastCommit = 0;
let lastRead = 0;
const unmerged = new UnmergedRuns();
if (!readonly) {
  const rows = db
    .prepare(
      `SELECT r.log_id, r.leaf_index, r.record_id, r.persons FROM person_runs r LEFT JOIN person_index_frontier f ON f.log_id = r.log_id
       WHERE r.leaf_index >= COALESCE(f.below_leaf, 0) ORDER BY r.rowid`,
    )
    .iterate() as IterableIterator<{ log_id: string; leaf_index: number; record_id: string; persons: Uint8Array }>;
  for (const r of rows) unmerged.add({ logId: r.log_id, leafIndex: r.leaf_index, recordId: r.record_id }, r.persons);
}

/** Merges the given runs into the index, and moves each log's frontier past them. */
const mergeRuns = db.transaction((places: readonly RunPlace[]) => {
  const rows: [string, string][] = [];
  const below = new Map<string, number>();
  for (const p of places) {
    below.set(p.logId, Math.max(below.get(p.logId) ?? 0, p.leafIndex + 1));
    // A run purged meanwhile (by `records purge` in another process) is simply gone.
    const run = runAt.get(p.logId, p.leafIndex) as Uint8Array | undefined;
    if (run) for (const subject of runSubjects(run)) rows.push([subject, p.recordId]);
  }
  // In key order: the index's B-tree is then written along its right edges, not at random pages.
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  for (const [subject, recordId] of rows) indexPerson.run(subject, recordId);
  for (const [logId, leaf] of below) moveFrontier.run(logId, leaf);
});

let indexScheduled = false;
let indexFailing = false;
let closing = false;

/** Merges the oldest runs for about `ms` of this thread's time (at least one run), and measures the rate. */
function indexChunk(ms: number): void {
  const places = unmerged.oldest(Math.max(256, Math.min(INDEX_CHUNK_QUIET, Math.round(mergeRate * ms))));
  if (places.length === 0) return;
  checkFiles();
  const t0 = performance.now();
  mergeRuns(places);
  const took = performance.now() - t0;
  const persons = places.reduce((n, p) => n + p.persons, 0);
  if (took > 0.5) mergeRate = 0.7 * mergeRate + 0.3 * (persons / took);
  unmerged.merged(places.length);
}

/** Merges one chunk a turn while runs wait (only in the process that writes logs: the gateway). */
function scheduleIndex(): void {
  if (!indexBehind || indexScheduled || closing || readonly || locks.size === 0 || unmerged.runs === 0) return;
  indexScheduled = true;
  const turn = () => {
    indexScheduled = false;
    if (closing) return;
    const quiet = performance.now() - lastCommit;
    if (quiet < INDEX_QUIET_MS) {
      indexScheduled = true;
      setTimeout(turn, INDEX_QUIET_MS - quiet).unref();
      return;
    }
    try {
      // The large chunk only when nothing at all came for a second: a lookup waits for the chunk in progress.
      indexChunk(quiet > 1000 && performance.now() - lastRead > 1000 ? INDEX_QUIET_CHUNK_MS : INDEX_BUSY_MS);
      indexFailing = false;
    } catch (e) {
      // A full disk, a store gone: the runs stay where they are (the truth), and lookups read them. Try again later.
      if (!indexFailing) console.error(`linkgw: the person index of ${path} could not be updated (${(e as Error).message}); lookups read the runs meanwhile`);
      indexFailing = true;
      setTimeout(scheduleIndex, 1000).unref();
      return;
    }
    scheduleIndex();
  };
  setImmediate(turn);
}

/** Record ids of the runs not merged yet that hold `subject`. */
function unmergedRecordsOf(subject: string): string[] {
  const key = subjectKeyBytes(subject);
  if (!key) return [];
  const out: string[] = [];
  for (const c of unmerged.candidates(key)) {
    const run = runAt.get(c.logId, c.leafIndex) as Uint8Array | undefined;
    if (run && holds(run, key)) out.push(c.recordId);
  }
  return out;
}
const insertNode = db.prepare('INSERT INTO log_nodes (log_id, level, idx, hash) VALUES (?, ?, ?, ?)');
const moveSize = db.prepare('UPDATE record_logs SET size = ? WHERE log_id = ? AND size = ?');
const insertCheckpoint = db.prepare(
  'INSERT INTO log_checkpoints (log_id, size, root, signed_note, cosignatures, created_at, kept) VALUES (?, ?, ?, ?, \'\', ?, ?)',
);
const dropCheckpoint = db.prepare('DELETE FROM log_checkpoints WHERE log_id = ? AND size = ? AND kept = 0');
const CHECKPOINT_SELECT = 'SELECT c.*, l.origin FROM log_checkpoints c JOIN record_logs l ON l.log_id = c.log_id';

/** The writer locks this thread holds, by log. */
const locks = new Map<string, Database.Database>();

function lockPath(logId: string): string {
  const name = /^[A-Za-z0-9._-]{1,64}$/.test(logId) ? logId : createHash('sha256').update(logId).digest('hex').slice(0, 32);
  return `${path}.${name}.writer-lock`;
}

function tryLock(logId: string): boolean {
  const lock = new Database(lockPath(logId));
  // Like the store's files (open-store.ts): the lock file names a log, and nobody else needs to read it.
  chmodSync(lockPath(logId), 0o600);
  try {
    lock.pragma('busy_timeout = 0');
    lock.pragma('journal_mode = MEMORY');
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
    locks.set(logId, lock);
    return true;
  } catch (e) {
    lock.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw e;
  }
}

/** The tree nodes of a connection's view of the store (the store's own, or a snapshot's). */
function nodeReader(conn: Database.Database): (logId: string, ids: readonly NodeId[]) => Buffer[] {
  const leafHashAt = conn.prepare('SELECT leaf_hash FROM access_records WHERE log_id = ? AND leaf_index = ?').pluck();
  const nodeAt = conn.prepare('SELECT hash FROM log_nodes WHERE log_id = ? AND level = ? AND idx = ?').pluck();
  const leafHashesIn = conn.prepare('SELECT leaf_hash FROM access_records WHERE log_id = ? AND leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index').pluck();
  return (logId, ids) => ids.map(({ level, index }) => {
    let h: Buffer | undefined;
    if (level === 0) h = leafHashAt.get(logId, index) as Buffer | undefined;
    else if (level >= LOWEST_STORED_LEVEL) h = nodeAt.get(logId, level, index) as Buffer | undefined;
    else {
      const { first, count } = leavesUnder(level, index);
      const leaves = leafHashesIn.all(logId, first, first + count) as Buffer[];
      if (leaves.length === count) h = rootOfLeafHashes(leaves);
    }
    if (!h) throw new Error(`log ${logId}: tree node ${level}/${index} is not stored`);
    return h;
  });
}
const nodes = nodeReader(db);

const LOGS_SELECT = 'SELECT log_id, origin, size, created_at, (SELECT MAX(leaf_index) FROM access_records a WHERE a.log_id = l.log_id) AS max_leaf FROM record_logs l ORDER BY log_id';
function logsOf(conn: Database.Database): LogInfo[] {
  return (conn.prepare(LOGS_SELECT).all() as { log_id: string; origin: string; size: number; created_at: number; max_leaf: number | null }[]).map(
    (r): LogInfo => ({ logId: r.log_id, origin: r.origin, size: r.size, maxLeafIndex: r.max_leaf, createdAt: r.created_at }),
  );
}

/**
 * The snapshot: a second connection holding one read transaction (WAL: it sees the store as of its first
 * read, whatever the writer commits meanwhile). The persons are copied once, in that transaction, into a
 * temporary table (on disk) keyed by log and leaf, so that they are then read a range at a time.
 */
let snap: { conn: Database.Database; nodes: ReturnType<typeof nodeReader>; personsReady: boolean } | undefined;

function snapshotBegin(): null {
  if (snap) throw new Error('a snapshot of this store is already open');
  const conn = new Database(path, { readonly, fileMustExist: true });
  conn.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  conn.pragma('temp_store = FILE');
  conn.exec('BEGIN');
  conn.prepare('SELECT COUNT(*) FROM record_logs').get();
  snap = { conn, nodes: nodeReader(conn), personsReady: false };
  return null;
}

function snapshotEnd(): null {
  if (!snap) return null;
  try {
    snap.conn.exec('ROLLBACK');
  } finally {
    snap.conn.close();
    snap = undefined;
  }
  return null;
}

function snapshotCall(c: SnapshotCall): unknown {
  if (!snap) throw new Error('no snapshot of this store is open');
  const conn = snap.conn;
  switch (c.what) {
    case 'logs':
      return logsOf(conn);
    case 'checkpoints':
      return (conn.prepare(`${CHECKPOINT_SELECT} WHERE c.log_id = ? ORDER BY c.size`).all(c.logId) as CheckpointRow[]).map(rowToCheckpoint);
    case 'purges':
      return (conn.prepare('SELECT * FROM log_purges WHERE log_id = ? ORDER BY below_leaf').all(c.logId) as PurgeRow[]).map(rowToPurge);
    case 'nodes':
      return Buffer.concat(snap.nodes(c.logId, c.ids));
    case 'leaves':
      return (conn.prepare('SELECT * FROM access_records WHERE log_id = ? AND leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index LIMIT ?').all(c.logId, c.from, c.to, c.limit) as RecordRow[]).map(rowToRecord);
    case 'first-leaf':
      return conn.prepare('SELECT MIN(leaf_index) FROM access_records WHERE log_id = ? AND leaf_index >= ? AND requested_at >= ?').pluck().get(c.logId, c.from, c.time) ?? null;
    case 'persons': {
      if (!snap.personsReady) {
        conn.exec(`CREATE TEMP TABLE verify_persons (log_id TEXT NOT NULL, leaf_index INTEGER NOT NULL, record_id TEXT NOT NULL, own TEXT NOT NULL, subject TEXT NOT NULL,
          PRIMARY KEY (log_id, leaf_index, subject)) WITHOUT ROWID`);
        conn.exec(`INSERT INTO verify_persons SELECT r.log_id, r.leaf_index, r.record_id, r.subject, s.subject FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id`);
        snap.personsReady = true;
      }
      // The index, grouped by record.
      const indexed = new Map<number, RecordPersons>();
      let current: { leaf: number; recordId: string; own: string; subjects: string[] } | undefined;
      const flush = () => current && indexed.set(current.leaf, { recordId: current.recordId, commitment: subjectsCommitment(current.recordId, current.subjects), stray: current.own !== '', count: current.subjects.length });
      const rows = conn
        .prepare('SELECT leaf_index, record_id, own, subject FROM temp.verify_persons WHERE log_id = ? AND leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index')
        .iterate(c.logId, c.from, c.to) as IterableIterator<{ leaf_index: number; record_id: string; own: string; subject: string }>;
      for (const r of rows) {
        if (current?.leaf !== r.leaf_index) {
          flush();
          current = { leaf: r.leaf_index, recordId: r.record_id, own: r.own, subjects: [] };
        }
        current.subjects.push(r.subject);
      }
      flush();
      // The runs are the truth; the index must agree with each run merged, and hold nothing of a run not merged.
      const below = (conn.prepare('SELECT below_leaf FROM person_index_frontier WHERE log_id = ?').pluck().get(c.logId) as number | undefined) ?? 0;
      const runs = conn
        .prepare('SELECT p.leaf_index, p.record_id, p.persons, r.subject AS own FROM person_runs p LEFT JOIN access_records r ON r.log_id = p.log_id AND r.leaf_index = p.leaf_index WHERE p.log_id = ? AND p.leaf_index >= ? AND p.leaf_index < ?')
        .iterate(c.logId, c.from, c.to) as IterableIterator<{ leaf_index: number; record_id: string; persons: Uint8Array; own: string | null }>;
      return mergePersons(indexed, runs, below);
    }
  }
}

/** The purge, in one transaction, one statement per table: the persons go first (found through the records). */
const purge = db.transaction((p: NewPurge): PurgeResult | null => {
  const added = db
    .prepare('INSERT INTO log_purges (log_id, below_leaf, root, frontier, signed_note, purged_at, before_time) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_id, below_leaf) DO NOTHING')
    .run(p.logId, p.belowLeaf, bytes(p.rootHash), Buffer.concat(p.frontier.map(bytes)), p.signedNote, p.purgedAt, p.before);
  if (added.changes !== 1) return null;
  const persons = db.prepare('DELETE FROM record_subjects WHERE record_id IN (SELECT record_id FROM access_records WHERE log_id = ? AND leaf_index < ?)').run(p.logId, p.belowLeaf);
  db.prepare('DELETE FROM person_runs WHERE log_id = ? AND leaf_index < ?').run(p.logId, p.belowLeaf);
  unmerged.purged(p.logId, p.belowLeaf);
  const records = db.prepare('DELETE FROM access_records WHERE log_id = ? AND leaf_index < ?').run(p.logId, p.belowLeaf);
  return { records: records.changes, persons: persons.changes };
});

function latestOf(logId: string): StoredCheckpoint | null {
  const r = db.prepare(`${CHECKPOINT_SELECT} WHERE c.log_id = ? ORDER BY c.size DESC LIMIT 1`).get(logId) as CheckpointRow | undefined;
  return r ? rowToCheckpoint(r) : null;
}

function claim(m: Extract<SqliteRequest, { op: 'claim' }>): ClaimedLog {
  if (!locks.has(m.logId)) {
    const until = Date.now() + m.waitMs;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (!tryLock(m.logId)) {
      if (Date.now() >= until) throw storeError(LOG_LOCKED, `log ${m.logId} is being written by another process`);
      Atomics.wait(pause, 0, 0, 50);
    }
  }
  let row = db.prepare('SELECT origin, size FROM record_logs WHERE log_id = ?').get(m.logId) as { origin: string; size: number } | undefined;
  if (!row) {
    db.prepare('INSERT INTO record_logs (log_id, origin, size, created_at) VALUES (?, ?, 0, ?)').run(m.logId, m.origin, Date.now());
    row = { origin: m.origin, size: 0 };
  }
  if (row.origin !== m.origin) throw new Error(`log ${m.logId} has the origin "${row.origin}", not "${m.origin}"`);
  const kept = db.prepare('SELECT MAX(created_at) FROM log_checkpoints WHERE log_id = ? AND kept = 1').pluck().get(m.logId) as number | null;
  return { logId: m.logId, origin: row.origin, size: row.size, edge: nodes(m.logId, rangeNodes(0, row.size)), latest: latestOf(m.logId), lastKeptAt: kept };
}

const append = db.transaction((a: LogAppend) => {
  if (!locks.has(a.logId)) throw storeError(LOG_LOCKED, `log ${a.logId} is not claimed by this store`);
  if (moveSize.run(a.fromSize + a.records.length, a.logId, a.fromSize).changes !== 1)
    throw storeError(LOG_CONFLICT, `log ${a.logId} is no longer at size ${a.fromSize}: another writer appended to it`);
  const leafHashes = bytes(a.leafHashes);
  const runs: { place: Omit<RunPlace, 'persons'>; run: PersonsRun }[] = [];
  a.records.forEach((r, i) => {
    insertRecord.run(recordToValues({ ...r, personsCommitment: r.personsCommitment && bytes(r.personsCommitment) }, leafHashes.subarray(i * 32, i * 32 + 32)));
    if (r.persons) {
      insertRun.run(a.logId, r.leafIndex, r.recordId, r.persons);
      runs.push({ place: { logId: a.logId, leafIndex: r.leafIndex, recordId: r.recordId }, run: r.persons });
    }
  });
  const hashes = bytes(a.nodes.hashes);
  a.nodes.levels.forEach((level, i) => insertNode.run(a.logId, level, a.nodes.indexes[i]!, hashes.subarray(i * 32, i * 32 + 32)));
  const c = a.checkpoint;
  if (c) {
    insertCheckpoint.run(a.logId, c.size, bytes(c.rootHash), c.signedNote, c.createdAt, c.kept ? 1 : 0);
    if (c.replaces !== null) dropCheckpoint.run(a.logId, c.replaces);
  }
  return runs;
});

/** The lookup's statements, one per shape of filter (at most 8), prepared once. */
const listStatements = new Map<string, { indexed: Database.Statement; unmerged: Database.Statement }>();

function list(q: RecordQuery): LoggedRecord[] {
  // The subject's own records, the batch records that name it in the index, and those whose runs are not merged
  // yet (found in memory, read by id), merged newest first.
  const where: string[] = ['r.non_disclosable = 0'];
  const args: (string | number)[] = [];
  if (q.from !== null) (where.push('r.requested_at >= ?'), args.push(q.from));
  if (q.to !== null) (where.push('r.requested_at < ?'), args.push(q.to));
  if (q.after) {
    where.push('(r.requested_at, r.log_id, r.leaf_index) < (?, ?, ?)');
    args.push(q.after.requestedAt, q.after.logId, q.after.leafIndex);
  }
  const shape = `${q.from !== null ? 'f' : ''}${q.to !== null ? 't' : ''}${q.after ? 'a' : ''}`;
  let st = listStatements.get(shape);
  if (!st) {
    const filter = where.join(' AND ');
    const order = 'ORDER BY requested_at DESC, log_id DESC, leaf_index DESC LIMIT ?';
    const inner = order.replace(/(requested_at|log_id|leaf_index) /g, 'r.$1 ');
    st = {
      indexed: db.prepare(
        `SELECT * FROM (
           SELECT * FROM (SELECT r.* FROM access_records r WHERE r.subject = ? AND ${filter} ${inner})
           UNION ALL
           SELECT * FROM (SELECT r.* FROM access_records r WHERE r.record_id IN (SELECT s.record_id FROM record_subjects s WHERE s.subject = ?) AND ${filter} ${inner})
         ) ${order}`,
      ),
      unmerged: db.prepare(`SELECT r.* FROM access_records r WHERE r.record_id IN (SELECT value FROM json_each(?)) AND ${filter} ${inner}`),
    };
    listStatements.set(shape, st);
  }
  const rows = st.indexed.all(q.subject, ...args, q.limit, q.subject, ...args, q.limit, q.limit) as RecordRow[];
  const pending = unmergedRecordsOf(q.subject);
  if (pending.length > 0) {
    const seen = new Set(rows.map((r) => r.record_id));
    for (const r of st.unmerged.all(JSON.stringify(pending), ...args, q.limit) as RecordRow[]) if (!seen.has(r.record_id)) rows.push(r);
    rows.sort((a, b) => Number(b.requested_at) - Number(a.requested_at) || (a.log_id < b.log_id ? 1 : a.log_id > b.log_id ? -1 : 0) || Number(b.leaf_index) - Number(a.leaf_index));
    rows.length = Math.min(rows.length, q.limit);
  }
  return rows.map(rowToRecord);
}

function storedPersons(logId: string | undefined): StoredPersons {
  // One pass over the log's persons, grouped by record: a commitment per batch record, never all persons at once.
  const out: StoredPersons = { batch: new Map(), strays: new Set() };
  let current: { recordId: string; own: string; subjects: string[] } | undefined;
  const flush = () => {
    if (!current) return;
    if (current.own !== '') out.strays.add(current.recordId);
    else out.batch.set(current.recordId, { commitment: subjectsCommitment(current.recordId, current.subjects), persons: current.subjects.length });
  };
  const rows = db
    .prepare(
      `SELECT s.record_id AS record_id, s.subject AS subject, r.subject AS own
       FROM record_subjects s JOIN access_records r ON r.record_id = s.record_id ${logId === undefined ? '' : 'WHERE r.log_id = ?'} ORDER BY s.record_id`,
    )
    .iterate(...(logId === undefined ? [] : [logId])) as IterableIterator<{ record_id: string; subject: string; own: string }>;
  for (const r of rows) {
    if (current?.recordId !== r.record_id) {
      flush();
      current = { recordId: r.record_id, own: r.own, subjects: [] };
    }
    current.subjects.push(r.subject);
  }
  flush();
  // The runs are the truth: a batch record with a run is committed to by its run (a run not merged yet has no index rows).
  const runs = db
    .prepare(`SELECT p.record_id, p.persons FROM person_runs p ${logId === undefined ? '' : 'WHERE p.log_id = ?'}`)
    .iterate(...(logId === undefined ? [] : [logId])) as IterableIterator<{ record_id: string; persons: Uint8Array }>;
  for (const r of runs) out.batch.set(r.record_id, { commitment: storedRunCommitment(r.record_id, r.persons), persons: runLength(r.persons) });
  return out;
}

function handle(m: SqliteRequest): unknown {
  switch (m.op) {
    case 'migrations':
      return migrated;
    case 'claim': {
      checkFiles();
      const claimed = claim(m);
      // Runs a crashed writer left unmerged are merged by the next one.
      scheduleIndex();
      return claimed;
    }
    case 'commit':
      // Before: never write into a file that is gone. After: a file removed during the commit took it along.
      checkFiles();
      // Back-pressure: past the backlog, this commit waits for a chunk of the index first.
      while (unmerged.persons > INDEX_BACKLOG) indexChunk(INDEX_BUSY_MS * 10);
      {
        const runs = append(m.append);
        checkFiles();
        for (const r of runs) unmerged.add(r.place, r.run);
        lastCommit = performance.now();
      }
      scheduleIndex();
      return null;
    case 'flush-index':
      while (unmerged.runs > 0) indexChunk(INDEX_QUIET_CHUNK_MS);
      return null;
    case 'check':
      // The idle check (the writer's readiness between commits): the files, and one read through the connection.
      checkFiles();
      db.prepare('SELECT COUNT(*) FROM record_logs').pluck().get();
      return null;
    case 'cosign':
      return db.prepare('UPDATE log_checkpoints SET cosignatures = cosignatures || ? WHERE log_id = ? AND size = ?').run(m.lines, m.logId, m.size).changes === 1;
    case 'logs':
      return logsOf(db);
    case 'snapshot-begin':
      return snapshotBegin();
    case 'snapshot-end':
      return snapshotEnd();
    case 'snapshot':
      return snapshotCall(m.call);
    case 'purge':
      return purge(m.purge);
    case 'latest':
      return (
        // Driven by the few logs, one primary-key probe each (the hourly history is not scanned).
        db
          .prepare('SELECT c.*, l.origin FROM record_logs l JOIN log_checkpoints c ON c.log_id = l.log_id AND c.size = (SELECT MAX(size) FROM log_checkpoints x WHERE x.log_id = l.log_id) ORDER BY l.log_id')
          .all() as CheckpointRow[]
      ).map(rowToCheckpoint);
    case 'checkpoints':
      return (db.prepare(`${CHECKPOINT_SELECT} WHERE c.log_id = ? ORDER BY c.size`).all(m.logId) as CheckpointRow[]).map(rowToCheckpoint);
    case 'nodes':
      return Buffer.concat(nodes(m.logId, m.ids));
    case 'record': {
      const r = db.prepare('SELECT * FROM access_records WHERE record_id = ?').get(m.recordId) as RecordRow | undefined;
      return r ? rowToRecord(r) : null;
    }
    case 'leaves':
      return (
        db.prepare('SELECT * FROM access_records WHERE log_id = ? AND leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index LIMIT ?').all(m.logId, m.from, m.to, m.limit) as RecordRow[]
      ).map(rowToRecord);
    case 'persons':
      return storedPersons(m.logId);
    case 'list':
      lastRead = performance.now();
      return list(m.query);
    case 'exchanges':
      return (
        db
          .prepare(
            // An exchange whose answer was not released (a NOT_RELEASED record corrects it) sent nothing anywhere.
            `SELECT * FROM access_records r WHERE r.subject = ? AND r.requested_at >= ? AND r.outcome = ${Outcome.PROVIDED} AND (r.requester = ? OR r.provider = ?)
               AND NOT EXISTS (SELECT 1 FROM access_records c WHERE c.subject = r.subject AND c.outcome = ${Outcome.NOT_RELEASED} AND c.corrects_record_id = r.record_id)
             ORDER BY r.requested_at DESC, r.log_id DESC, r.leaf_index DESC LIMIT ?`,
          )
          .all(m.query.subject, m.query.since ?? Number.MIN_SAFE_INTEGER, m.query.agency, m.query.agency, m.query.limit) as RecordRow[]
      ).map(rowToRecord);
    case 'close':
      closing = true;
      snapshotEnd();
      for (const l of locks.values()) l.close();
      locks.clear();
      db.close();
      return null;
  }
}

parentPort!.on('message', (m: SqliteRequest) => {
  // Each answer carries the time the operation took in this thread, for the gateway's metrics.
  const started = performance.now();
  try {
    const value = handle(m);
    parentPort!.postMessage({ id: m.id, ok: true, value, seconds: (performance.now() - started) / 1000, backlog: unmerged.persons });
  } catch (e) {
    const err = e as Error & { code?: string };
    parentPort!.postMessage({ id: m.id, ok: false, error: { message: err.message, code: err.code }, seconds: (performance.now() - started) / 1000 });
  }
  if (m.op === 'close') parentPort!.close();
});
