/**
 * The group-commit writer bounds each commit by records and by the persons its batch records name.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { silentLogger } from '../../src/log/logger.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { bulkIssuanceDraft, issuanceDraft } from '../helpers/drafts.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const stores: SqliteRecordStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

const batchRecord = bulkIssuanceDraft;

describe('RecordWriter batches', () => {
  it('hold at most maxBatchSubjects persons, and at least one record however many it names', async () => {
    const store = await SqliteRecordStore.open(join(tempDir(), 'records.sqlite'));
    stores.push(store);
    const sizes: number[] = [];
    const writer = new RecordWriter({
      store,
      signer,
      log: silentLogger,
      maxBatchSubjects: 6,
      observer: { batchCommitted: (n) => void sizes.push(n), batchFailed: () => undefined, backlog: () => undefined },
    });
    // Queued in one tick: 3 + 3 | 3 + 3 | 9 (alone, over the cap) | 1 + 2 + 3
    await writer.appendAll([3, 3, 3, 3, 9, 1, 2, 3].map(batchRecord));
    await writer.close();
    expect(sizes).toEqual([2, 2, 1, 3]);
    const [report] = await verifyStore(store, new Map([['seal-1', publicKey]]));
    expect(report).toMatchObject({ records: 8, problem: null });
  });
});

describe('RecordWriter linger', () => {
  /** Appends `n` records 20 ms apart, and returns the sizes of the batches committed. */
  async function sizesOf(o: { lingerMs?: number; lingerRecords?: number }, n: number): Promise<number[]> {
    const store = await SqliteRecordStore.open(join(tempDir(), 'records.sqlite'));
    stores.push(store);
    const sizes: number[] = [];
    const writer = new RecordWriter({ store, signer, log: silentLogger, ...o, observer: { batchCommitted: (k) => void sizes.push(k), batchFailed: () => undefined, backlog: () => undefined } });
    const done: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      done.push(writer.append(issuanceDraft()));
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(done);
    await writer.close();
    const [report] = await verifyStore(store, new Map([['seal-1', publicKey]]));
    expect(report).toMatchObject({ records: n, problem: null });
    return sizes;
  }

  it('lets records arriving apart share one commit, which ends early once it holds lingerRecords', async () => {
    // A linger far longer than the test: only reaching lingerRecords can end it, so the first commit holds 3.
    expect((await sizesOf({ lingerMs: 600_000, lingerRecords: 3 }, 3))[0]).toBe(3);
  });

  it('is off by default: the first record is committed without waiting for the next', async () => {
    expect((await sizesOf({}, 3))[0]).toBe(1);
  });
});

describe('RecordWriter after a failed commit', () => {
  /**
   * The real store, whose appends fail as planned: the next append of records before anything is stored, or
   * after it was stored (a lost answer); or the next append that carries a checkpoint, after storing it.
   */
  function flaky(store: RecordStore) {
    const plan: ('records-before' | 'records-after' | 'checkpoint-after')[] = [];
    const append = async (a: Parameters<RecordStore['append']>[0]) => {
      const i = plan.findIndex((p) => (p === 'checkpoint-after' ? a.checkpoint !== undefined : a.records.length > 0));
      const how = i >= 0 ? plan.splice(i, 1)[0] : undefined;
      if (how === 'records-before') throw new Error('connection reset before the commit');
      await store.append(a);
      if (how) throw new Error('connection reset after the commit');
    };
    const wrapped = new Proxy(store, {
      get: (t, k) => (k === 'append' ? append : typeof Reflect.get(t, k) === 'function' ? (Reflect.get(t, k) as Function).bind(t) : Reflect.get(t, k)),
    }) as RecordStore;
    return { wrapped, plan };
  }

  it('fails the batch, reads the log again, and adopts only its own batch or checkpoint that did land', async () => {
    const store = await SqliteRecordStore.open(join(tempDir(), 'records.sqlite'));
    stores.push(store);
    const { wrapped, plan } = flaky(store);
    // One checkpoint right after the first commit, then none until close: the test decides what rides along.
    // One attempt per batch: this test decides which commit fails (test/faults/ covers the retries).
    const writer = new RecordWriter({ store: wrapped, signer, log: silentLogger, logId: 'flaky', checkpointIntervalMs: 3_600_000, maxAttempts: 1 });
    plan.push('checkpoint-after');
    await writer.append(issuanceDraft());
    // The first checkpoint is stored, but the writer was told it failed.
    await until(async () => (await store.latestCheckpoints())[0]?.size === 1);
    // The next commit must not send that checkpoint again (its key is taken): it resolves.
    await writer.append(issuanceDraft());
    plan.push('records-before');
    await expect(writer.append(issuanceDraft())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    plan.push('records-after');
    const lost = issuanceDraft();
    await expect(writer.append(lost)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await writer.appendAll([issuanceDraft(), issuanceDraft()]);
    expect(writer.stalled()).toBe(false);
    await writer.close();
    // Leaves: the first two, the one whose answer was lost, the last two, and the record saying that the one
    // whose answer was lost was not released (its request had failed); not the one that never landed.
    const leaves = await store.readLeaves('flaky', 0, 100, 100);
    expect(leaves.map((r) => r.leafIndex)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(leaves[2]!.recordId).toBe(lost.recordId);
    expect(leaves[5]).toMatchObject({ outcome: Outcome.NOT_RELEASED, correctsRecordId: lost.recordId, subject: lost.subject, providedAt: null });
    const [report] = await verifyStore(store, new Map([['seal-1', publicKey]]));
    expect(report).toMatchObject({ records: 6, signedSize: 6, problem: null });
  });
});
