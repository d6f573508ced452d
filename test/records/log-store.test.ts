/**
 * The transparency log in each real store: records become leaves, checkpoints are signed off the request path
 * and open with the log key, inclusion and consistency proofs from the stored nodes verify, a restarted writer
 * resumes the log, one writer per log, and a log someone else appended to is never adopted.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome, recordLeaf, type AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { leafHash, rootOfLeafHashes, verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { ed25519NoteVerifier } from '../../src/core/signed-note.js';
import { KeyObjectSigner, type Signer } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { consistencyProofOf, inclusionProofsOf } from '../../src/records/log-proofs.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import { LOG_LOCKED, type RecordStore } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { createPgSchema, PG_URL, tempDir, type StoreKind } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';
import { personsNamed } from '../helpers/drafts.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);

/** A signer that counts its signatures (the per-request path must not sign). */
function counting(inner: Signer): Signer & { count: number } {
  const s = { keyId: inner.keyId, publicKey: inner.publicKey, count: 0, sign: (m: Uint8Array) => (s.count++, inner.sign(m)) };
  return s;
}

function draft(i: number, over: Partial<AccessRecordDraft> = {}): AccessRecordDraft {
  return {
    recordId: base32Encode(randomBytes(15)),
    subject: base32Encode(randomBytes(16)),
    requestedAt: 1_790_000_000_000 + i,
    providedAt: 1_790_000_000_100 + i,
    requester: 'pension',
    provider: 'tax',
    procedure: 'pension.eligibility',
    legalBasisRow: 'B2-001',
    item: 'income',
    outcome: Outcome.PROVIDED,
    nonDisclosable: false,
    ...over,
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Target {
  open(): Promise<RecordStore>;
  exec(sql: string): Promise<Record<string, unknown>[]>;
}

async function target(kind: StoreKind): Promise<Target> {
  if (kind === 'sqlite') {
    const path = join(tempDir(), 'records.sqlite');
    return {
      open: async () => {
        const s = await SqliteRecordStore.open(path);
        cleanups.push(() => s.close());
        return s;
      },
      exec: async (sql) => {
        const db = new Database(path);
        try {
          const st = db.prepare(sql);
          return st.reader ? (st.all() as Record<string, unknown>[]) : (st.run(), []);
        } finally {
          db.close();
        }
      },
    };
  }
  const s = await createPgSchema();
  cleanups.push(s.drop);
  return {
    open: async () => {
      const st = await PostgresRecordStore.open(s.url);
      cleanups.push(() => st.close());
      return st;
    },
    exec: async (sql) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`SET search_path = ${s.schema}`);
        return (await c.query(sql)).rows;
      } finally {
        await c.end();
      }
    },
  };
}

const writerOn = (store: RecordStore, logId: string, o: Partial<ConstructorParameters<typeof RecordWriter>[0]> = {}) =>
  new RecordWriter({ store, signer, log: silentLogger, logId, origin: `linkgw/records/${logId}`, ...o });

describe.each<StoreKind>(['sqlite', 'postgres'])('the transparency log in %s', (kind) => {
  it('makes each record a leaf, signs checkpoints off the request path, and serves proofs that verify', async () => {
    const t = await target(kind);
    const store = await t.open();
    const counted = counting(signer);
    const w = writerOn(store, 'replica-a', { signer: counted, checkpointIntervalMs: 60_000 });
    await w.open();
    const drafts = Array.from({ length: 23 }, (_, i) => (i === 7 ? draft(i, { subject: '', persons: personsNamed('P1', 'P2', 'P3') }) : draft(i)));
    for (let i = 0; i < drafts.length; i += 5) await w.appendAll(drafts.slice(i, i + 5));
    // Five commits, at most one signature so far (the first checkpoint, right after the first commit).
    expect(counted.count).toBeLessThanOrEqual(1);
    await w.close();
    expect(counted.count).toBeLessThanOrEqual(2);

    const [latest] = await store.latestCheckpoints();
    expect(latest).toMatchObject({ logId: 'replica-a', origin: 'linkgw/records/replica-a', size: 23 });
    const { checkpoint } = openCheckpoint(latest!.signedNote, [ed25519NoteVerifier('linkgw/records/replica-a', publicKey)], { origin: 'linkgw/records/replica-a' });
    // The leaves are the records' canonical encodings, in order.
    const leaves = drafts.map((d, i) => leafHash(recordLeaf('linkgw/records/replica-a', i, d, d.persons)));
    expect(checkpoint.rootHash).toEqual(rootOfLeafHashes(leaves));
    const stored = await store.readLeaves('replica-a', 0, 23, 100);
    expect(stored.map((r) => [r.recordId, r.leafIndex])).toEqual(drafts.map((d, i) => [d.recordId, i]));
    expect(stored.map((r) => r.leafHash)).toEqual(leaves);

    const proofs = await inclusionProofsOf(store, 'replica-a', stored.map((r) => r.leafIndex), 23);
    stored.forEach((r, i) => expect(verifyInclusion(r.leafIndex, 23, r.leafHash, proofs[i]!, checkpoint.rootHash), `leaf ${i}`).toBe(true));
    expect(verifyInclusion(3, 23, stored[4]!.leafHash, proofs[3]!, checkpoint.rootHash)).toBe(false);
    for (const a of [1, 5, 8, 16, 22])
      for (const b of [a, 17, 23].filter((x) => x >= a))
        expect(verifyConsistency(a, b, await consistencyProofOf(store, 'replica-a', a, b), rootOfLeafHashes(leaves.slice(0, a)), rootOfLeafHashes(leaves.slice(0, b))), `${a} → ${b}`).toBe(true);
    expect(await store.recordById(drafts[7]!.recordId)).toMatchObject({ leafIndex: 7, subject: '' });
    expect((await store.storedPersons('replica-a')).batch.get(drafts[7]!.recordId)?.persons).toBe(3);
    expect(await verifyStore(store, keys)).toEqual([{ logId: 'replica-a', origin: 'linkgw/records/replica-a', records: 23, treeSize: 23, checkpoints: expect.any(Number), signedSize: 23, unsigned: 0, problem: null, problems: [], problemCount: 0, from: 0, purgedBelow: 0 }]);
  });

  it('keeps the latest checkpoint and the first of each hour, not one a second', async () => {
    const t = await target(kind);
    const store = await t.open();
    const w = writerOn(store, 'replica-c', { checkpointIntervalMs: 1 });
    for (let i = 0; i < 8; i++) {
      await w.append(draft(i));
      await new Promise((r) => setTimeout(r, 5));
    }
    await w.close();
    const all = await store.checkpoints('replica-c');
    expect(all.length).toBeLessThanOrEqual(3); // the first (kept), perhaps one from a new hour, and the latest
    expect(all[all.length - 1]).toMatchObject({ size: 8 });
    expect(all[0]!.kept).toBe(true);
  });

  it('resumes the log after a restart, consistent with what it signed before', async () => {
    const t = await target(kind);
    let store = await t.open();
    let w = writerOn(store, 'replica-r');
    await w.appendAll([draft(0), draft(1), draft(2)]);
    await w.close();
    const [before] = await store.latestCheckpoints();
    await store.close();

    store = await t.open();
    w = writerOn(store, 'replica-r');
    await w.open();
    expect(w.size).toBe(3);
    await w.appendAll([draft(3), draft(4)]);
    await w.close();
    const [after] = await store.latestCheckpoints();
    expect(after!.size).toBe(5);
    expect((await store.readLeaves('replica-r', 0, 5, 10)).map((r) => r.leafIndex)).toEqual([0, 1, 2, 3, 4]);
    expect(verifyConsistency(3, 5, await consistencyProofOf(store, 'replica-r', 3, 5), before!.rootHash, after!.rootHash)).toBe(true);
    expect((await verifyStore(store, keys))[0]!.problem).toBeNull();
  });

  it('signs, after a crash, the leaves committed but never signed; and refuses a tail changed meanwhile', async () => {
    const t = await target(kind);
    let store = await t.open();
    // A writer that never gets to sign: its store goes away without the writer closing (a crash).
    let w = writerOn(store, 'replica-x', { checkpointIntervalMs: 3_600_000 });
    await w.append(draft(0));
    // The first checkpoint comes right after the first commit; then none for an hour.
    await until(async () => (await store.latestCheckpoints())[0]?.size === 1, 20_000);
    await w.appendAll([draft(1), draft(2)]);
    await store.close();
    expect((await t.exec(`SELECT size FROM log_checkpoints WHERE log_id = 'replica-x'`)).map((r) => Number(r.size))).toEqual([1]);

    store = await t.open();
    w = writerOn(store, 'replica-x');
    await w.open();
    await w.close();
    expect((await store.latestCheckpoints())[0]!.size).toBe(3);
    expect((await verifyStore(store, keys))[0]).toMatchObject({ unsigned: 0, problem: null });
    await store.close();

    // Again, and this time a record of the unsigned tail is changed before the restart: no checkpoint for it.
    store = await t.open();
    w = writerOn(store, 'replica-x', { checkpointIntervalMs: 3_600_000 });
    await w.appendAll([draft(3), draft(4)]);
    await store.close();
    await t.exec(`UPDATE access_records SET item = 'pension-benefit' WHERE log_id = 'replica-x' AND leaf_index = 4`);
    store = await t.open();
    w = writerOn(store, 'replica-x');
    await expect(w.open()).rejects.toThrow(/does not extend its last checkpoint \(3 leaves\): the record at leaf 4 does not match its leaf hash/);
    expect((await store.latestCheckpoints())[0]!.size).toBe(3);
  });

  it('lets one writer write a log at a time, while others still read it', async () => {
    const t = await target(kind);
    const first = await t.open();
    const w = writerOn(first, 'replica-l');
    await w.append(draft(0));
    const second = await t.open();
    await expect(second.claimLog('replica-l', 'linkgw/records/replica-l', { waitMs: 200 })).rejects.toMatchObject({ code: LOG_LOCKED });
    // Reading (what `linkgw records verify` does) works while the writer holds the log.
    expect((await verifyStore(second, keys)).map((r) => [r.logId, r.records])).toEqual([['replica-l', 1]]);
    // Another log in the same store is free.
    await expect(second.claimLog('replica-m', 'linkgw/records/replica-m', { waitMs: 0 })).resolves.toMatchObject({ size: 0 });
    await w.close();
    await first.close();
    await expect(second.claimLog('replica-l', 'linkgw/records/replica-l', { waitMs: 2000 })).resolves.toMatchObject({ size: 1 });
  });

  it('stops writing a log that someone else appended to, instead of adopting it', async () => {
    const t = await target(kind);
    const store = await t.open();
    const w = writerOn(store, 'replica-f');
    await w.appendAll([draft(0), draft(1)]);
    // Behind the writer's back: the log grows by one leaf.
    const [r1] = await t.exec(`SELECT * FROM access_records WHERE log_id = 'replica-f' AND leaf_index = 1`);
    await t.exec(`UPDATE record_logs SET size = 3 WHERE log_id = 'replica-f'`);
    await t.exec(
      `INSERT INTO access_records (log_id, leaf_index, record_id, subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, leaf_hash)
       SELECT log_id, 2, 'FORGED', subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, leaf_hash
       FROM access_records WHERE log_id = 'replica-f' AND leaf_index = 1`,
    );
    expect(r1).toBeDefined();
    await expect(w.append(draft(2))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(w.stalled()).toBe(true);
    await expect(w.append(draft(3))).rejects.toThrow(/cannot be written/);
    expect((await t.exec(`SELECT COUNT(*) AS n FROM access_records WHERE log_id = 'replica-f'`))[0]).toMatchObject({ n: kind === 'sqlite' ? 3 : '3' });
    await w.close();
  });
});
