/**
 * Tamper evidence: records written by the real writer into each real store, then changed, deleted, inserted,
 * reordered or rewritten from outside; verification names the first record that shows it.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome, recordHash, type AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';
import { silentLogger } from '../../src/log/logger.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { verifyChain } from '../../src/core/chain-verify.js';
import { createPgSchema, PG_URL, startHarness, tempDir, type StoreKind } from '../helpers/gateway-harness.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);

function draft(i: number): AccessRecordDraft {
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
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

interface Fixture {
  store: RecordStore;
  chainId: string;
  exec(sql: string): Promise<Record<string, unknown>[]>;
}

async function fixture(kind: StoreKind, batches = [4, 3, 3], withBatchRecord = false): Promise<Fixture> {
  let store: RecordStore;
  let exec: Fixture['exec'];
  if (kind === 'sqlite') {
    const path = join(tempDir(), 'records.sqlite');
    store = await SqliteRecordStore.open(path);
    exec = async (sql) => {
      const db = new Database(path);
      try {
        const st = db.prepare(sql);
        return st.reader ? (st.all() as Record<string, unknown>[]) : (st.run(), []);
      } finally {
        db.close();
      }
    };
  } else {
    const s = await createPgSchema();
    store = await PostgresRecordStore.open(s.url);
    cleanups.push(s.drop);
    exec = async (sql) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`SET search_path = ${s.schema}`);
        return (await c.query(sql)).rows;
      } finally {
        await c.end();
      }
    };
  }
  cleanups.push(() => store.close());
  const writer = new RecordWriter({ store, signer, log: silentLogger });
  let i = 0;
  for (const n of batches) await writer.appendAll(Array.from({ length: n }, () => draft(i++)));
  if (withBatchRecord) await writer.append({ ...draft(i++), subject: '', subjects: ['S1', 'S2', 'S3'] });
  await writer.close();
  return { store, chainId: writer.chainId, exec };
}

function verifyChainAlone(c: Awaited<ReturnType<RecordStore['readChain']>>, chainId: string) {
  return verifyChain(chainId, c.rows, c.seals, keys, c.subjects, c.links).problem;
}

async function firstProblem(f: Fixture) {
  const [report] = await verifyStore(f.store, keys);
  return report!.problem;
}

describe.each<StoreKind>(['sqlite', 'postgres'])('verification of records in %s', (kind) => {
  it('passes an untouched store: every record chained, every batch sealed', async () => {
    const f = await fixture(kind);
    const reports = await verifyStore(f.store, keys);
    expect(reports).toEqual([{ chainId: f.chainId, records: 10, seals: 3, problem: null }]);
  });

  it('finds a changed record', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE access_records SET item = 'pension-benefit' WHERE seq = 5`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', seq: 5 });
  });

  it('finds a deleted record', async () => {
    const f = await fixture(kind);
    await f.exec(`DELETE FROM access_records WHERE seq = 5`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'deleted', seq: 6 });
  });

  it('finds deleted records at the end of the chain', async () => {
    const f = await fixture(kind);
    await f.exec(`DELETE FROM access_records WHERE seq >= 9`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'deleted', seq: 10 });
  });

  it('finds an inserted record, even one whose own hash was computed correctly', async () => {
    const f = await fixture(kind);
    const [r4] = await f.exec(`SELECT * FROM access_records WHERE seq = 4`);
    await f.exec(`UPDATE access_records SET seq = seq + 1000 WHERE seq >= 5`);
    await f.exec(`UPDATE access_records SET seq = seq - 999 WHERE seq >= 1000`);
    const forged = { ...draft(99), chainId: f.chainId, subjectsDigest: null };
    const hash = recordHash(String(r4!.hash), forged);
    await f.exec(
      `INSERT INTO access_records VALUES ('${f.chainId}', 5, '${forged.recordId}', '${forged.subject}', ${forged.requestedAt}, ${forged.providedAt}, 'pension', 'tax', 'pension.eligibility', 'B2-001', 'income', 2, 0, NULL, '${String(r4!.hash)}', '${hash}')`,
    );
    expect(await firstProblem(f)).toMatchObject({ kind: 'inserted', seq: 5, recordId: forged.recordId });
  });

  it('finds reordered records', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE access_records SET seq = 1000 WHERE seq = 5`);
    await f.exec(`UPDATE access_records SET seq = 5 WHERE seq = 6`);
    await f.exec(`UPDATE access_records SET seq = 6 WHERE seq = 1000`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'reordered', seq: 5 });
  });

  it('finds a change whose hashes were all recomputed, through the seal', async () => {
    const f = await fixture(kind);
    const rows = await f.exec(`SELECT * FROM access_records ORDER BY seq`);
    let prev = String(rows[3]!.hash);
    for (const r of rows.slice(4)) {
      const rec = {
        chainId: String(r.chain_id),
        recordId: String(r.record_id),
        subject: String(r.subject),
        requestedAt: Number(r.requested_at),
        providedAt: r.provided_at === null ? null : Number(r.provided_at),
        requester: String(r.requester),
        provider: String(r.provider),
        procedure: String(r.procedure),
        legalBasisRow: String(r.legal_basis_row),
        item: Number(r.seq) === 5 ? 'pension-benefit' : String(r.item),
        outcome: Number(r.outcome) as AccessRecordDraft['outcome'],
        nonDisclosable: Number(r.non_disclosable) === 1,
        subjectsDigest: r.subjects_digest === null ? null : String(r.subjects_digest),
      };
      const hash = recordHash(prev, rec);
      await f.exec(`UPDATE access_records SET item = '${rec.item}', prev_hash = '${prev}', hash = '${hash}' WHERE seq = ${Number(r.seq)}`);
      prev = hash;
    }
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', seq: 5 });
  });

  it('finds a person removed from or added to a batch record, or added to a single record', async () => {
    const f = await fixture(kind, [4, 3, 3], true);
    expect(await firstProblem(f)).toBeNull();
    await f.exec(`DELETE FROM record_subjects WHERE subject = 'S2'`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', seq: 11 });
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('S2', (SELECT record_id FROM access_records WHERE seq = 11))`);
    expect(await firstProblem(f)).toBeNull();
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('S9', (SELECT record_id FROM access_records WHERE seq = 3))`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'inserted', seq: 3 });
  });

  it('links a new chain to the heads of the chains before it, and finds an older chain cut back or deleted', async () => {
    const f = await fixture(kind); // chain A: 10 records under 3 seals
    const later = new RecordWriter({ store: f.store, signer, log: silentLogger });
    await later.appendAll([draft(200), draft(201)]);
    await later.close();
    const b = later.chainId;
    const [headA] = await f.exec(`SELECT hash FROM access_records WHERE chain_id = '${f.chainId}' AND seq = 10`);
    expect((await f.store.readChain(b)).links).toEqual([{ predecessor: f.chainId, lastSeq: 10, headHash: String(headA!.hash) }]);
    expect((await verifyStore(f.store, keys)).map((r) => r.problem)).toEqual([null, null]);
    // A third chain links only to B: A's head is already covered by B's link, so links stay few.
    const third = new RecordWriter({ store: f.store, signer, log: silentLogger });
    await third.append(draft(300));
    await third.close();
    const [headB] = await f.exec(`SELECT hash FROM access_records WHERE chain_id = '${b}' AND seq = 2`);
    expect((await f.store.readChain(third.chainId)).links).toEqual([{ predecessor: b, lastSeq: 2, headHash: String(headB!.hash) }]);
    expect((await verifyStore(f.store, keys)).map((r) => r.problem)).toEqual([null, null, null]);
    const problemOf = async (chainId: string) => (await verifyStore(f.store, keys)).find((r) => r.chainId === chainId)?.problem;

    // A's last batch and its seal removed: A alone still verifies; B's link shows the cut.
    await f.exec(`DELETE FROM access_records WHERE chain_id = '${f.chainId}' AND seq >= 8`);
    await f.exec(`DELETE FROM record_seals WHERE chain_id = '${f.chainId}' AND last_seq = 10`);
    expect(verifyChainAlone(await f.store.readChain(f.chainId), f.chainId)).toBeNull();
    expect(await problemOf(f.chainId)).toMatchObject({ kind: 'deleted', seq: 10 });
    // All of A removed.
    await f.exec(`DELETE FROM access_records WHERE chain_id = '${f.chainId}'`);
    await f.exec(`DELETE FROM record_seals WHERE chain_id = '${f.chainId}'`);
    expect(await problemOf(f.chainId)).toMatchObject({ kind: 'deleted', detail: expect.stringMatching(/whole chain is missing/) });
    // B's links cannot be dropped to hide it: B's first record no longer follows from its genesis.
    await f.exec(`DELETE FROM record_chain_links WHERE chain_id = '${b}'`);
    expect(await problemOf(b)).toMatchObject({ seq: 1 });
    // The third chain's records and seals removed, its links left behind: reported, not passed.
    await f.exec(`DELETE FROM access_records WHERE chain_id = '${third.chainId}'`);
    await f.exec(`DELETE FROM record_seals WHERE chain_id = '${third.chainId}'`);
    expect(await problemOf(third.chainId)).toMatchObject({ kind: 'deleted', detail: expect.stringMatching(/only its links/) });
  });

  it('finds a forged seal', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE record_seals SET signature = '${randomBytes(64).toString('base64')}' WHERE last_seq = 7`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'bad-seal', seq: 7 });
  });
});

describe('linkgw records verify', () => {
  it('exits 0 on an intact store and 1 naming the first tampered record', async () => {
    const dataDir = tempDir();
    const h = await startHarness({ dataDir });
    const c = h.client('pension');
    for (const n of ['123456789018', '621498320257']) await c.issueCode(n);
    const gwRecords = JSON.stringify(await h.gw.store.readChain(h.gw.writer.chainId));
    await h.stop().catch(() => undefined);
    expect(gwRecords).toContain('code.issue');
    const run = promisify(execFile);
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir };
    const ok = await run(process.execPath, [bin, 'records', 'verify', '--json'], { env });
    expect(ok.stdout).toMatch(/"tampered":0/);
    const db = new Database(join(dataDir, 'records.sqlite'));
    db.prepare(`UPDATE access_records SET requester = 'tax' WHERE seq = 2`).run();
    db.close();
    const bad = await run(process.execPath, [bin, 'records', 'verify', '--json'], { env }).then(
      () => null,
      (e: { code: number; stdout: string }) => e,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stdout).toMatch(/"kind":"changed","seq":2/);
  });
});
