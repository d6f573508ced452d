/**
 * Tamper evidence: records written by the real writer into each real store, then changed, deleted, inserted,
 * moved or rewritten from outside; verification names the first record that shows it. Truncation together
 * with the log's own checkpoints is caught by checkpoints saved outside the store (`--against`).
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome, recordLeaf, type AccessRecordDraft } from '../../src/core/access-record.js';
import { base32Encode } from '../../src/core/base32.js';
import { leafHash } from '../../src/core/merkle.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { parseSavedCheckpoints, verifyAgainst, verifyStore } from '../../src/records/verify-store.js';
import { cosignedNote } from '../../src/records/schema.js';
import { createPgSchema, PG_URL, startHarness, tempDir, type StoreKind } from '../helpers/gateway-harness.js';
import { named, personsNamed } from '../helpers/drafts.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const LOG = 'replica-v';
const ORIGIN = `linkgw/records/${LOG}`;

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
  exec(sql: string): Promise<Record<string, unknown>[]>;
  /** A hash as a literal of this store's SQL. */
  blob(b: Buffer): string;
}

/** Ten records in three batches (and a batch record of three persons if asked), all signed. */
async function fixture(kind: StoreKind, withBatchRecord = false): Promise<Fixture> {
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
  const writer = new RecordWriter({ store, signer, log: silentLogger, logId: LOG, origin: ORIGIN });
  let i = 0;
  for (const n of [4, 3, 3]) await writer.appendAll(Array.from({ length: n }, () => draft(i++)));
  if (withBatchRecord) await writer.append({ ...draft(i++), subject: '', persons: personsNamed('S1', 'S2', 'S3') });
  await writer.close();
  await store.flushIndex();
  return { store, exec, blob: (b) => (kind === 'sqlite' ? `X'${b.toString('hex')}'` : `'\\x${b.toString('hex')}'::bytea`) };
}

async function firstProblem(f: Fixture) {
  const [report] = await verifyStore(f.store, keys);
  return report!.problem;
}

/** The canonical leaf hash of a stored row after changing some of its fields. */
function rehash(row: Record<string, unknown>, change: Partial<AccessRecordDraft>): Buffer {
  const r = {
    recordId: String(row.record_id),
    subject: String(row.subject),
    requestedAt: Number(row.requested_at),
    providedAt: row.provided_at === null ? null : Number(row.provided_at),
    requester: String(row.requester),
    provider: String(row.provider),
    procedure: String(row.procedure),
    legalBasisRow: String(row.legal_basis_row),
    item: String(row.item),
    outcome: Number(row.outcome) as Outcome,
    nonDisclosable: Number(row.non_disclosable) === 1,
    ...change,
  };
  return leafHash(recordLeaf(ORIGIN, Number(row.leaf_index), r, undefined));
}

describe.each<StoreKind>(['sqlite', 'postgres'])('verification of records in %s', (kind) => {
  it('passes an untouched store: every record a leaf, the tree as signed', async () => {
    const f = await fixture(kind);
    expect(await verifyStore(f.store, keys)).toEqual([{ logId: LOG, origin: ORIGIN, records: 10, treeSize: 10, checkpoints: expect.any(Number), signedSize: 10, unsigned: 0, problem: null, problems: [], problemCount: 0, from: 0, purgedBelow: 0 }]);
  });

  it('finds a changed record', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE access_records SET item = 'pension-benefit' WHERE leaf_index = 4`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 4 });
  });

  it('finds a deleted record', async () => {
    const f = await fixture(kind);
    await f.exec(`DELETE FROM access_records WHERE leaf_index = 4`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'deleted', leafIndex: 5, detail: expect.stringMatching(/leaves 4\.\.4 are missing/) });
  });

  it('finds deleted records at the end of the log', async () => {
    const f = await fixture(kind);
    await f.exec(`DELETE FROM access_records WHERE leaf_index >= 8`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'deleted', leafIndex: 8 });
  });

  it('finds the end cut off with the log\'s size, through the checkpoint it signed', async () => {
    const f = await fixture(kind);
    await f.exec(`DELETE FROM access_records WHERE leaf_index >= 8`);
    await f.exec(`UPDATE record_logs SET size = 8`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'deleted', leafIndex: 8, detail: expect.stringMatching(/signed a checkpoint of 10 leaves; only 8 remain/) });
  });

  it('finds a record inserted after the last leaf', async () => {
    const f = await fixture(kind);
    await f.exec(
      `INSERT INTO access_records (log_id, leaf_index, record_id, subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, leaf_hash)
       SELECT log_id, 10, 'INSERTED', subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, leaf_hash FROM access_records WHERE leaf_index = 9`,
    );
    expect(await firstProblem(f)).toMatchObject({ kind: 'inserted', leafIndex: 10 });
  });

  it('finds a record inserted in the middle, even with a correct leaf hash of its own', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE access_records SET leaf_index = leaf_index + 1000 WHERE leaf_index >= 5`);
    await f.exec(`UPDATE access_records SET leaf_index = leaf_index - 999 WHERE leaf_index >= 1000`);
    const [r4] = await f.exec(`SELECT * FROM access_records WHERE leaf_index = 4`);
    const forged = { ...r4!, leaf_index: 5, record_id: 'FORGEDRECORD000000000000' };
    const h = rehash(forged, {});
    await f.exec(
      `INSERT INTO access_records (log_id, leaf_index, record_id, subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, leaf_hash)
       SELECT log_id, 5, 'FORGEDRECORD000000000000', subject, requested_at, provided_at, requester, provider, procedure, legal_basis_row, item, outcome, non_disclosable, ${f.blob(h)} FROM access_records WHERE leaf_index = 4`,
    );
    await f.exec(`UPDATE record_logs SET size = 11`);
    // Its own hash is right; the records after it moved, so the first of them no longer matches its position.
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 6 });
  });

  it('finds records that changed places', async () => {
    const f = await fixture(kind);
    await f.exec(`UPDATE access_records SET leaf_index = 1000 WHERE leaf_index = 5`);
    await f.exec(`UPDATE access_records SET leaf_index = 5 WHERE leaf_index = 6`);
    await f.exec(`UPDATE access_records SET leaf_index = 6 WHERE leaf_index = 1000`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 5 });
  });

  it('finds a record rewritten with its leaf hash recomputed, through the signed checkpoint', async () => {
    const f = await fixture(kind);
    const [r] = await f.exec(`SELECT * FROM access_records WHERE leaf_index = 5`);
    await f.exec(`UPDATE access_records SET item = 'pension-benefit', leaf_hash = ${f.blob(rehash(r!, { item: 'pension-benefit' }))} WHERE leaf_index = 5`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', detail: expect.stringMatching(/rewritten|tree node/) });
  });

  it('finds a person removed from or added to a batch record, or added to a record of one', async () => {
    const f = await fixture(kind, true);
    expect(await firstProblem(f)).toBeNull();
    // The person index disagrees with the run it was merged from.
    await f.exec(`DELETE FROM record_subjects WHERE subject = '${named('S2')}'`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 10 });
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('${named('S2')}', (SELECT record_id FROM access_records WHERE leaf_index = 10))`);
    expect(await firstProblem(f)).toBeNull();
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('${named('S9')}', (SELECT record_id FROM access_records WHERE leaf_index = 10))`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 10 });
    await f.exec(`DELETE FROM record_subjects WHERE subject = '${named('S9')}'`);
    // The run itself rewritten (another person in place of one), and rewritten out of order.
    const [run] = await f.exec('SELECT persons FROM person_runs WHERE leaf_index = 10');
    const original = Buffer.from(run!.persons as Uint8Array);
    await f.exec(`UPDATE person_runs SET persons = ${f.blob(Buffer.from(personsNamed('S1', 'S2', 'S9')))} WHERE leaf_index = 10`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 10 });
    await f.exec(`UPDATE person_runs SET persons = ${f.blob(Buffer.concat([original.subarray(16), original.subarray(0, 16)]))} WHERE leaf_index = 10`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 10 });
    await f.exec(`UPDATE person_runs SET persons = ${f.blob(original)} WHERE leaf_index = 10`);
    expect(await firstProblem(f)).toBeNull();
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('${named('S9')}', (SELECT record_id FROM access_records WHERE leaf_index = 3))`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'inserted', leafIndex: 3 });
  });

  it('finds a forged checkpoint and a changed tree node', async () => {
    const f = await fixture(kind);
    const [cp] = await f.exec(`SELECT signed_note FROM log_checkpoints ORDER BY size DESC LIMIT 1`);
    const forged = String(cp!.signed_note).replace(/ [A-Za-z0-9+/=]+\n$/, ` ${randomBytes(68).toString('base64')}\n`);
    await f.exec(`UPDATE log_checkpoints SET signed_note = '${forged}' WHERE size = 10`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'bad-checkpoint' });
    await f.exec(`UPDATE log_checkpoints SET signed_note = '${String(cp!.signed_note)}' WHERE size = 10`);
    expect(await firstProblem(f)).toBeNull();
    await f.exec(`UPDATE log_nodes SET hash = ${f.blob(randomBytes(32))} WHERE level = 3 AND idx = 0`);
    expect(await firstProblem(f)).toMatchObject({ kind: 'changed', leafIndex: 0, detail: expect.stringMatching(/tree node 3\/0/) });
  });

  it('with checkpoints saved outside the store, finds the log cut back together with its own checkpoints', async () => {
    const f = await fixture(kind);
    // What `linkgw records checkpoints` printed, kept by an auditor.
    const saved = (await f.store.latestCheckpoints()).map((c) => JSON.stringify({ origin: c.origin, signedNote: cosignedNote(c) })).join('\n');
    const against = parseSavedCheckpoints(saved);
    expect(against).toHaveLength(1);
    expect((await verifyStore(f.store, keys, { against }))[0]!.problem).toBeNull();
    expect((await verifyAgainst(f.store, keys, against))[0]!.problem).toBeNull();
    // The last three records go, with the log's size and every checkpoint after size 7: the store alone looks fine.
    await f.exec(`DELETE FROM access_records WHERE leaf_index >= 7`);
    await f.exec(`DELETE FROM log_nodes WHERE (level = 1 AND idx >= 3) OR (level = 2 AND idx >= 1) OR level >= 3`);
    await f.exec(`UPDATE record_logs SET size = 7`);
    await f.exec(`DELETE FROM log_checkpoints`);
    expect(await firstProblem(f)).toBeNull();
    expect((await verifyStore(f.store, keys, { against }))[0]!.problem).toMatchObject({ kind: 'deleted', detail: expect.stringMatching(/saved outside the store has 10 leaves; only 7 remain/) });
    expect((await verifyAgainst(f.store, keys, against))[0]!.problem).toMatchObject({ kind: 'deleted' });
    // A saved checkpoint of a log the store no longer has at all.
    await f.exec(`DELETE FROM access_records`);
    await f.exec(`DELETE FROM record_logs`);
    expect((await verifyStore(f.store, keys, { against }))[0]!.problem).toMatchObject({ kind: 'deleted', detail: expect.stringMatching(/no such log/) });
    // And a saved checkpoint that is not from this gateway's keys is reported, not trusted.
    const otherKey = new Map([['x', generateKeyPairSync('ed25519').publicKey]]);
    expect((await verifyStore(f.store, otherKey, { against }))[0]!.problem).toMatchObject({ kind: 'bad-checkpoint' });
  });
});

describe('saved checkpoint files', () => {
  it('read JSON lines and raw notes back to back', () => {
    const a = 'linkgw/records/a\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 linkgw/records/a AAAA\n\u2014 w BBBB\n';
    const b = 'linkgw/records/b\n4\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 linkgw/records/b CCCC\n';
    expect(parseSavedCheckpoints(a + b)).toEqual([a, b]);
    expect(parseSavedCheckpoints(`${a}\n${b}`)).toEqual([a, b]);
    expect(parseSavedCheckpoints([a, b].map((signedNote) => JSON.stringify({ origin: 'x', signedNote })).join('\n'))).toEqual([a, b]);
  });
});

describe('linkgw records verify', () => {
  it('exits 0 on an intact store and 1 naming the first tampered record', async () => {
    const dataDir = tempDir();
    const h = await startHarness({ dataDir });
    const c = h.client('pension');
    for (const n of ['123456789018', '621498320257']) await c.issueCode(n);
    const leaves = await h.gw.store.readLeaves(h.gw.writer.logId, 0, 10, 10);
    await h.stop().catch(() => undefined);
    expect(leaves.map((r) => r.procedure)).toEqual(['code.issue', 'code.issue']);
    const run = promisify(execFile);
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir };
    const ok = await run(process.execPath, [bin, 'records', 'verify', '--json'], { env });
    expect(ok.stdout).toMatch(/"tampered":0/);
    const db = new Database(join(dataDir, 'records.sqlite'));
    db.prepare(`UPDATE access_records SET requester = 'tax' WHERE leaf_index = 1`).run();
    db.close();
    const bad = await run(process.execPath, [bin, 'records', 'verify', '--json'], { env }).then(
      () => null,
      (e: { code: number; stdout: string }) => e,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stdout).toMatch(/"kind":"changed","leafIndex":1/);
  });
});
