/**
 * A record must be durable before anything is released. PostgreSQL can be configured so that a COMMIT returns
 * before its WAL is flushed (synchronous_commit = off); the store notices and turns it back on for its own
 * transactions.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { issuanceDraft } from '../helpers/drafts.js';
import { createPgSchema } from '../helpers/gateway-harness.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

async function roundTrip(url: string): Promise<{ forced: boolean; verified: boolean }> {
  const store = await PostgresRecordStore.open(url);
  try {
    const writer = new RecordWriter({ store, signer, log: silentLogger });
    const draft = issuanceDraft();
    const subject = draft.subject;
    await writer.append(draft);
    await writer.close();
    const rows = await store.listBySubject({ subject, from: null, to: null, after: null, limit: 10 });
    expect(rows).toHaveLength(1);
    const reports = await verifyStore(store, new Map([['seal-1', publicKey]]));
    return { forced: store.syncCommitForced, verified: reports.length === 1 && reports[0]!.problem === null };
  } finally {
    await store.close();
  }
}

describe('PostgreSQL record store durability', () => {
  it('leaves a durable server setting alone', async () => {
    const s = await createPgSchema();
    cleanups.push(s.drop);
    expect(await roundTrip(s.url)).toEqual({ forced: false, verified: true });
  });

  it('forces synchronous_commit on for its transactions when the server has it off', async () => {
    const s = await createPgSchema();
    cleanups.push(s.drop);
    expect(await roundTrip(`${s.url}&options=${encodeURIComponent('-c synchronous_commit=off')}`)).toEqual({ forced: true, verified: true });
  });
});
