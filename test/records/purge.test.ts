/**
 * Retention (issue 12 item 6) on each real store: a purge removes the longest signed prefix of old records (a
 * multiple of 8 leaves) with their persons, records itself as a signed purge, and verification passes after it
 * while still failing on a record deleted any other way, on a tampered or forged purge row, and on a purge
 * row removed. A purge is idempotent and leaves a young log alone.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { parseBefore, purgeRecords } from '../../src/records/purge.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { verifyStore } from '../../src/records/verify-store.js';
import type { StoreKind } from '../helpers/gateway-harness.js';
import { openTestStore, recordDraft, type StoreFixture } from '../helpers/record-stores.js';
import { named, personsNamed } from '../helpers/drafts.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const LOG = 'replica-p';
const OLD = Date.parse('2018-01-01T00:00:00Z');
const YOUNG = Date.parse('2026-01-01T00:00:00Z');
const BEFORE = Date.parse('2020-01-01T00:00:00Z');
const NOW = Date.parse('2026-06-01T00:00:00Z');

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** 20 old records (a batch record of P1 and P2 at leaf 3, SOLO's record at leaf 5), then 10 young ones (a batch record naming P1 at leaf 25). */
async function fixture(kind: StoreKind, count = { old: 20, young: 10 }): Promise<StoreFixture> {
  const f = await openTestStore(kind);
  cleanups.push(() => f.close());
  const writer = new RecordWriter({ store: f.store, signer, log: silentLogger, logId: LOG, origin: `linkgw/records/${LOG}` });
  for (let i = 0; i < count.old + count.young; i++) {
    const at = i < count.old ? OLD + i * 1000 : YOUNG + i * 1000;
    if (i === 3) await writer.append({ ...recordDraft(at), subject: '', persons: personsNamed('P1', 'P2') });
    else if (i === 25) await writer.append({ ...recordDraft(at), subject: '', persons: personsNamed('P1', 'P3') });
    else if (i === 5) await writer.append(recordDraft(at, { subject: 'SOLO' }));
    else await writer.append(recordDraft(at));
  }
  await writer.close();
  // The person index merged, so that what the tests read of it does not depend on when the indexer ran.
  await f.store.flushIndex();
  return f;
}

const purge = (f: StoreFixture, o: { dryRun?: boolean; before?: number } = {}) => purgeRecords(f.store, signer, keys, { before: o.before ?? BEFORE, now: NOW, ...(o.dryRun ? { dryRun: true } : {}) });
const verify = async (f: StoreFixture) => (await verifyStore(f.store, keys))[0]!;
const list = (f: StoreFixture, subject: string) => f.store.listBySubject({ subject, from: null, to: null, after: null, limit: 100 });

describe.each<StoreKind>(['sqlite', 'postgres'])('retention in %s', (kind) => {
  it('purges the old prefix (a multiple of 8 leaves) with its persons; verify then starts at the purge and passes', async () => {
    const f = await fixture(kind);
    expect(await verify(f)).toMatchObject({ problem: null, records: 30 });
    expect((await list(f, named('P1'))).map((r) => r.leafIndex)).toEqual([25, 3]);

    const dry = await purge(f, { dryRun: true });
    expect(dry).toEqual([expect.objectContaining({ logId: LOG, fromLeaf: 0, belowLeaf: 16, records: 16, persons: 2, purged: false })]);
    expect(await f.exec('SELECT COUNT(*) AS n FROM access_records')).toEqual([{ n: kind === 'sqlite' ? 30 : '30' }]);

    const [done] = await purge(f);
    expect(done).toMatchObject({ logId: LOG, fromLeaf: 0, belowLeaf: 16, records: 16, persons: 2, purged: true });
    const [v] = await verifyStore(f.store, keys);
    expect(v).toMatchObject({ problem: null, problemCount: 0, records: 14, from: 16, purgedBelow: 16, treeSize: 30 });
    // The disclosure lookup no longer returns purged records, and still returns the later ones.
    expect((await list(f, named('P1'))).map((r) => r.leafIndex)).toEqual([25]);
    expect(await list(f, named('P2'))).toEqual([]);
    expect(await list(f, 'SOLO')).toEqual([]);
    expect(await f.exec('SELECT subject FROM record_subjects ORDER BY subject')).toEqual([named('P1'), named('P3')].sort().map((subject) => ({ subject })));
    expect(await f.exec('SELECT leaf_index FROM person_runs')).toEqual([{ leaf_index: kind === 'sqlite' ? 25 : '25' }]);
    // Hashes stay: the stored tree nodes and checkpoints are kept.
    expect(Number((await f.exec('SELECT COUNT(*) AS n FROM log_nodes WHERE level = 3 AND idx < 2'))[0]!.n)).toBe(2);
  });

  it('is idempotent, and leaves a young log or an empty store alone', async () => {
    const f = await fixture(kind);
    await purge(f);
    const [again] = await purge(f);
    expect(again).toMatchObject({ fromLeaf: 16, belowLeaf: 16, records: 0, purged: false });
    expect(await f.exec('SELECT COUNT(*) AS n FROM log_purges')).toEqual([{ n: kind === 'sqlite' ? 1 : '1' }]);
    expect((await verify(f)).problem).toBeNull();
    // Nothing older than a time before every record.
    const [none] = await purge(f, { before: OLD - 1 });
    expect(none).toMatchObject({ purged: false, belowLeaf: 16 });

    const young = await fixture(kind, { old: 7, young: 4 });
    // 7 old leaves round down to 0: a purge keeps whole blocks of 8.
    expect(await purge(young)).toEqual([expect.objectContaining({ purged: false, belowLeaf: 0, reason: expect.stringMatching(/no records older/) })]);
    const empty = await openTestStore(kind);
    cleanups.push(() => empty.close());
    expect(await purgeRecords(empty.store, signer, keys, { before: BEFORE, now: NOW })).toEqual([]);
  });

  it('still fails on a record deleted outside a purge, after one', async () => {
    const f = await fixture(kind);
    await purge(f);
    await f.exec('DELETE FROM access_records WHERE leaf_index = 20');
    expect((await verify(f)).problem).toMatchObject({ kind: 'deleted', leafIndex: 21 });
  });

  it('fails on the first kept record deleted (the purge point moved by hand)', async () => {
    const f = await fixture(kind);
    await purge(f);
    await f.exec('DELETE FROM access_records WHERE leaf_index = 16');
    expect((await verify(f)).problem).toMatchObject({ kind: 'deleted', leafIndex: 17 });
  });

  it('fails on a tampered, forged or removed purge row', async () => {
    const f = await fixture(kind);
    await purge(f);
    const [row] = await f.exec('SELECT * FROM log_purges');
    // Moved further, to cover records deleted by hand: the signed statement no longer matches.
    await f.exec('DELETE FROM access_records WHERE leaf_index < 24');
    await f.exec('UPDATE log_purges SET below_leaf = 24');
    let v = await verify(f);
    expect(v.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['bad-purge', 'deleted']));
    expect(v.purgedBelow).toBe(0);
    await f.exec('UPDATE log_purges SET below_leaf = 16');
    // A plain checkpoint of the log put in place of the purge statement: signed, but not a purge.
    await f.exec(`UPDATE log_purges SET signed_note = (SELECT signed_note FROM log_checkpoints ORDER BY size DESC LIMIT 1)`);
    v = await verify(f);
    expect(v.problems).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'bad-purge', detail: expect.stringMatching(/does not verify/) })]));
    // A frontier changed.
    await f.exec(`UPDATE log_purges SET signed_note = '${String(row!.signed_note)}', frontier = ${f.blob(Buffer.alloc(32 * 1, 7))}`);
    expect((await verify(f)).problems.map((p) => p.kind)).toContain('bad-purge');
    // The purge row removed altogether: the records below it are simply missing.
    await f.exec('DELETE FROM log_purges');
    expect((await verify(f)).problem).toMatchObject({ kind: 'deleted', leafIndex: 24 });
  });

  it('refuses to purge over tampering (a purge never launders a deletion)', async () => {
    const f = await fixture(kind);
    await f.exec('DELETE FROM access_records WHERE leaf_index = 4');
    const [r] = await purge(f);
    expect(r).toMatchObject({ purged: false, belowLeaf: 0, reason: expect.stringMatching(/refused: leaves below 16 do not verify \(deleted at leaf 5/) });
    expect(await f.exec('SELECT COUNT(*) AS n FROM log_purges')).toEqual([{ n: kind === 'sqlite' ? 0 : '0' }]);
  });
});

describe('purge --before', () => {
  it('reads ISO times and ages', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    expect(new Date(parseBefore('7y', now)).toISOString()).toBe('2019-06-01T00:00:00.000Z');
    expect(parseBefore('90d', now)).toBe(now - 90 * 86_400_000);
    expect(parseBefore('12h', now)).toBe(now - 12 * 3_600_000);
    expect(parseBefore('2020-01-01T00:00:00Z', now)).toBe(Date.parse('2020-01-01T00:00:00Z'));
    expect(() => parseBefore('soon', now)).toThrow(/neither an ISO 8601 time nor an age/);
  });
});

describe('linkgw records purge', () => {
  it('reports per log with --json, changes nothing with --dry-run, and verify passes after it', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { join } = await import('node:path');
    const { startHarness, tempDir } = await import('../helpers/gateway-harness.js');
    const { population } = await import('../helpers/population.js');
    const dataDir = tempDir();
    const h = await startHarness({ dataDir });
    const c = h.client('pension');
    for (const n of population(10)) await c.issueCode(n);
    await h.stop().catch(() => undefined);
    const run = promisify(execFile);
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir };
    const lines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const dry = await run(process.execPath, [bin, 'records', 'purge', '--before', '0h', '--dry-run', '--json'], { env });
    expect(lines(dry.stdout)).toEqual([expect.objectContaining({ fromLeaf: 0, belowLeaf: 8, records: 8, purged: false, dryRun: true })]);
    const done = await run(process.execPath, [bin, 'records', 'purge', '--before', '0h', '--json'], { env });
    expect(lines(done.stdout)).toEqual([expect.objectContaining({ fromLeaf: 0, belowLeaf: 8, records: 8, purged: true })]);
    const again = await run(process.execPath, [bin, 'records', 'purge', '--before', '0h', '--json'], { env });
    expect(lines(again.stdout)).toEqual([expect.objectContaining({ fromLeaf: 8, belowLeaf: 8, records: 0, purged: false })]);
    const ok = await run(process.execPath, [bin, 'records', 'verify', '--json'], { env });
    expect(lines(ok.stdout)).toEqual([expect.objectContaining({ problem: null, from: 8, purgedBelow: 8, records: 2 }), expect.objectContaining({ tampered: 0, purged: 8 })]);
    // Two records changed: every problem is found, the output is limited.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dataDir, 'records.sqlite'));
    db.prepare("UPDATE access_records SET requester = 'tax' WHERE leaf_index IN (8, 9)").run();
    db.close();
    const limited = await run(process.execPath, [bin, 'records', 'verify', '--max-problems', '1'], { env }).then(
      () => null,
      (e: { code: number; stdout: string }) => e,
    );
    expect(limited?.code).toBe(1);
    expect(limited?.stdout).toMatch(/changed at leaf 8 .*\nand \d+ more\n/);
    const bad = await run(process.execPath, [bin, 'records', 'purge'], { env }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/--before/) });
    // Seven processes (a gateway and six commands) start here; on a loaded machine that takes a while.
  }, 240_000);
});
