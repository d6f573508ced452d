/**
 * Batch records keep their persons as one sorted run, merged into the person index behind the commits (issue 19,
 * ADR 0104). Whether a run is merged yet or not, the disclosure lookup finds every record naming a person, and
 * verify checks the runs and the index against each other. The merge is driven by hand here (`on-flush`), so
 * each state is reached on purpose rather than by timing.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { issuanceDraft, named, personsNamed } from '../helpers/drafts.js';
import { tempDir, type StoreKind } from '../helpers/gateway-harness.js';
import { openTestStore } from '../helpers/record-stores.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const batch = (...names: string[]) => ({ ...issuanceDraft(), subject: '', persons: personsNamed(...names) });
const lookup = (store: { listBySubject: SqliteRecordStore['listBySubject'] }, who: string) =>
  store.listBySubject({ subject: named(who), from: null, to: null, after: null, limit: 100 }).then((rs) => rs.map((r) => r.recordId).sort());

describe.each<StoreKind>(['sqlite', 'postgres'])('persons runs in %s', (kind) => {
  it('are found by person before and after they are merged into the index, and verify passes in both states', async () => {
    const f = await openTestStore(kind, { personIndex: 'on-flush' });
    cleanups.push(() => f.close());
    const writer = new RecordWriter({ store: f.store, signer, log: silentLogger, logId: 'runs' });
    const a = batch('P1', 'P2');
    const b = batch('P2', 'P3', 'P4');
    const c = batch('P1');
    await writer.appendAll([a, issuanceDraft(), b]);
    await writer.append(c);
    await writer.close();

    // Nothing merged: the index is empty, the runs hold everyone.
    expect(await f.exec('SELECT COUNT(*) AS n FROM record_subjects')).toEqual([{ n: kind === 'sqlite' ? 0 : '0' }]);
    expect(await lookup(f.store, 'P1')).toEqual([a.recordId, c.recordId].sort());
    expect(await lookup(f.store, 'P2')).toEqual([a.recordId, b.recordId].sort());
    expect(await lookup(f.store, 'P9')).toEqual([]);
    expect((await verifyStore(f.store, keys))[0]).toMatchObject({ records: 4, problem: null });

    await f.store.flushIndex();
    expect(Number((await f.exec('SELECT COUNT(*) AS n FROM record_subjects'))[0]!.n)).toBe(6);
    expect(await lookup(f.store, 'P1')).toEqual([a.recordId, c.recordId].sort());
    expect(await lookup(f.store, 'P4')).toEqual([b.recordId]);
    expect((await verifyStore(f.store, keys))[0]).toMatchObject({ records: 4, problem: null });
  });

  it('catch a person slipped into the index of a run not merged yet', async () => {
    const f = await openTestStore(kind, { personIndex: 'on-flush' });
    cleanups.push(() => f.close());
    const writer = new RecordWriter({ store: f.store, signer, log: silentLogger, logId: 'runs-2' });
    const a = batch('P1', 'P2');
    await writer.append(a);
    await writer.close();
    await f.exec(`INSERT INTO record_subjects (subject, record_id) VALUES ('${named('P1')}', '${a.recordId}')`);
    expect((await verifyStore(f.store, keys))[0]!.problem).toMatchObject({ kind: 'changed', leafIndex: 0 });
  });
});

describe('persons runs in sqlite across a restart', () => {
  it('are found again from the runs left unmerged, and merged by the next writer', async () => {
    const path = join(tempDir(), 'records.sqlite');
    const first = await SqliteRecordStore.open(path, { personIndex: 'on-flush' });
    const writer = new RecordWriter({ store: first, signer, log: silentLogger, logId: 'restart' });
    const a = batch('P1', 'P2');
    await writer.append(a);
    await writer.close();
    await first.close();

    const second = await SqliteRecordStore.open(path);
    cleanups.push(() => second.close());
    expect(await lookup(second, 'P2')).toEqual([a.recordId]);
    // The next writer of a log merges what was left, behind its own commits.
    const next = new RecordWriter({ store: second, signer, log: silentLogger, logId: 'restart' });
    await next.open();
    await second.flushIndex();
    expect(await lookup(second, 'P2')).toEqual([a.recordId]);
    await next.close();
    expect((await verifyStore(second, keys))[0]).toMatchObject({ records: 1, problem: null });
  });
});
