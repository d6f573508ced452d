/**
 * The group-commit writer bounds each commit by records and by the persons its batch records name.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { bulkIssuanceDraft } from '../helpers/drafts.js';
import { tempDir } from '../helpers/gateway-harness.js';

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
