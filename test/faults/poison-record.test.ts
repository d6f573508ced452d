/**
 * Issue 8, item 2 (second half): no single record can fail a shared commit. Records of many requests share one
 * commit; when the store refuses the commit for something in one record (here: a record id already in the log,
 * against SQLite's UNIQUE key; a NUL byte PostgreSQL cannot store; a field too long for the leaf), the writer halves
 * the batch down to the culprit and fails only that request; the others commit, and the log verifies.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AccessRecordDraft } from '../../src/core/access-record.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { issuanceDraft } from '../helpers/drafts.js';
import { createPgSchema, tempDir } from '../helpers/gateway-harness.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const AGENCIES = ['pension', 'tax', 'employment', 'welfare'];

async function stores(): Promise<[string, RecordStore][]> {
  const sqlite = await SqliteRecordStore.open(join(tempDir(), 'records.sqlite'));
  const schema = await createPgSchema();
  const postgres = await PostgresRecordStore.open(schema.url);
  cleanups.push(async () => {
    await sqlite.close();
    await postgres.close();
    await schema.drop();
  });
  return [
    ['SQLite', sqlite],
    ['PostgreSQL', postgres],
  ];
}

describe('a poison record in a shared commit', async () => {
  for (const [kind, store] of await stores()) {
    it(`fails only its own request (${kind})`, async () => {
      const commits: number[] = [];
      const writer = new RecordWriter({
        store,
        signer,
        log: silentLogger,
        observer: { batchCommitted: (n) => void commits.push(n), batchFailed: () => undefined, backlog: () => undefined },
      });
      const first = issuanceDraft();
      await writer.append(first);
      // One tick, so one batch: 29 good records of four agencies and three that the store or the leaf refuses.
      const good = Array.from({ length: 29 }, (_, i) => issuanceDraft({ requester: AGENCIES[i % 4]! }));
      // PostgreSQL's record table is partitioned by month and has no unique key across partitions (the
      // gateway's random ids are unique by construction: docs/adr/0012-record-partitions.md).
      const poison: AccessRecordDraft[] = [
        ...(kind === 'SQLite' ? [issuanceDraft({ recordId: first.recordId })] : []), // the UNIQUE record id
        issuanceDraft({ procedure: 'x'.repeat(70_000) }), // longer than a leaf field may be
        ...(kind === 'PostgreSQL' ? [issuanceDraft({ item: 'code\u0000' })] : []), // PostgreSQL text holds no NUL
      ];
      const drafts = [...good.slice(0, 10), poison[0]!, ...good.slice(10, 20), ...poison.slice(1), ...good.slice(20)];
      const outcomes = await Promise.allSettled(drafts.map((d) => writer.append(d)));
      const failed = drafts.filter((_, i) => outcomes[i]!.status === 'rejected');
      expect(failed.map((d) => d.recordId).sort()).toEqual(poison.map((d) => d.recordId).sort());
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/refused by the record store; nothing was released/) });
      await writer.close();
      // Every good record is in the log, once; the log verifies.
      const leaves = await store.readLeaves(writer.logId, 0, 1000, 1000);
      expect(leaves.map((r) => r.recordId).sort()).toEqual([first, ...good].map((d) => d.recordId).sort());
      const report = (await verifyStore(store, new Map([['seal-1', publicKey]]))).find((r) => r.logId === writer.logId);
      expect(report).toMatchObject({ records: 30, problem: null });
      console.log(`${kind}: commits of ${commits.join(', ')} records`);
      expect(writer.ready()).toBe(true);
    });
  }
});
