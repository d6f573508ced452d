/**
 * The writer and the calls its records belong to (issue 20, item 5): a call that ended stops where it is. A
 * record whose call ended before its commit is never committed; one whose call ended while its commit ran is
 * followed by a NOT_RELEASED record; an exchange that happened (the provider answered) is recorded whatever the
 * call does. And the store that vanishes (item 2) or cannot be reached while idle (item 3).
 */
import { generateKeyPairSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { GatewayError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/log/logger.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import type { RecordStore } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { issuanceDraft } from '../helpers/drafts.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { until } from '../helpers/wait.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const stores: SqliteRecordStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

async function sqlite(): Promise<{ store: SqliteRecordStore; path: string }> {
  const path = join(tempDir(), 'records.sqlite');
  const store = await SqliteRecordStore.open(path);
  stores.push(store);
  return { store, path };
}

/** The real store, whose commits of records wait until the test lets them go. */
function gated(store: RecordStore) {
  let open: () => void = () => undefined;
  let gate = Promise.resolve();
  let entered: () => void = () => undefined;
  let inCommit = new Promise<void>((r) => (entered = r));
  const close = () => {
    gate = new Promise((r) => (open = r));
    inCommit = new Promise<void>((r) => (entered = r));
  };
  const append = async (a: Parameters<RecordStore['append']>[0]) => {
    if (a.records.length > 0) {
      entered();
      await gate;
    }
    await store.append(a);
  };
  const wrapped = new Proxy(store, {
    get: (t, k) => (k === 'append' ? append : typeof Reflect.get(t, k) === 'function' ? (Reflect.get(t, k) as Function).bind(t) : Reflect.get(t, k)),
  }) as RecordStore;
  return { wrapped, close, open: () => open(), entered: () => inCommit };
}

const cancelled = () => new GatewayError('CANCELLED', 'the call was cancelled');

describe('RecordWriter and the call a record belongs to', () => {
  it('never commits a record whose call ended before it was queued, or while it waited in the queue', async () => {
    const { store } = await sqlite();
    const g = gated(store);
    const writer = new RecordWriter({ store: g.wrapped, signer, log: silentLogger, logId: 'cancel-queued' });
    const gone = new AbortController();
    gone.abort(cancelled());
    await expect(writer.append(issuanceDraft(), { signal: gone.signal })).rejects.toMatchObject({ code: 'CANCELLED' });

    // One commit holds the gate; the next record waits in the queue behind it, and its call is cancelled there.
    g.close();
    const first = writer.append(issuanceDraft());
    await g.entered();
    const ac = new AbortController();
    const queued = issuanceDraft();
    const waiting = writer.append(queued, { signal: ac.signal });
    ac.abort(cancelled());
    await expect(waiting).rejects.toMatchObject({ code: 'CANCELLED' });
    g.open();
    await first;
    await writer.close();
    const leaves = await store.readLeaves('cancel-queued', 0, 100, 100);
    expect(leaves).toHaveLength(1);
    expect(leaves.map((r) => r.recordId)).not.toContain(queued.recordId);
    expect((await verifyStore(store, keys))[0]).toMatchObject({ records: 1, problem: null });
  });

  it('follows a record whose call ended while its commit ran with a NOT_RELEASED record, and fails the call', async () => {
    const { store } = await sqlite();
    const g = gated(store);
    const writer = new RecordWriter({ store: g.wrapped, signer, log: silentLogger, logId: 'cancel-in-commit' });
    g.close();
    const ac = new AbortController();
    const draft = issuanceDraft();
    const appended = writer.append(draft, { signal: ac.signal });
    await g.entered();
    ac.abort(new GatewayError('DEADLINE_EXCEEDED', 'the deadline passed'));
    g.open();
    await expect(appended).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await until(() => writer.size === 2);
    await writer.close();
    const leaves = await store.readLeaves('cancel-in-commit', 0, 100, 100);
    expect(leaves.map((r) => [r.recordId, r.outcome, r.correctsRecordId ?? null])).toEqual([
      [draft.recordId, Outcome.ISSUED, null],
      [leaves[1]!.recordId, Outcome.NOT_RELEASED, draft.recordId],
    ]);
  });

  it('records an exchange that happened even when its call has ended, and says that its answer was not released', async () => {
    const { store } = await sqlite();
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'cancel-exchanged' });
    const ac = new AbortController();
    ac.abort(cancelled());
    const draft = issuanceDraft({ outcome: Outcome.PROVIDED, provider: 'tax', providedAt: Date.now() });
    await expect(writer.append(draft, { signal: ac.signal, exchanged: true })).rejects.toMatchObject({ code: 'CANCELLED' });
    await until(() => writer.size === 2);
    await writer.close();
    const leaves = await store.readLeaves('cancel-exchanged', 0, 100, 100);
    expect(leaves.map((r) => r.outcome)).toEqual([Outcome.PROVIDED, Outcome.NOT_RELEASED]);
    expect(leaves[1]!.correctsRecordId).toBe(draft.recordId);
  });

  it('resolves a record whose call goes on, and leaves nothing listening on its signal', async () => {
    const { store } = await sqlite();
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'cancel-none' });
    const ac = new AbortController();
    await writer.append(issuanceDraft(), { signal: ac.signal });
    // Aborting after the record landed and the answer went: nothing more happens to the log.
    ac.abort(cancelled());
    await writer.close();
    expect(await store.readLeaves('cancel-none', 0, 100, 100)).toHaveLength(1);
  });
});

describe('RecordWriter and a store that vanishes', () => {
  it('fails the commit after the store file was removed, says why it is not ready, and writes nothing more', async () => {
    const { store, path } = await sqlite();
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'vanish', idleCheckMs: 0 });
    await writer.append(issuanceDraft());
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    await expect(writer.append(issuanceDraft())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(writer.ready()).toBe(false);
    expect(writer.notReadyReason()).toMatch(/store is gone.*no longer the file this gateway opened/);
    // Every later request fails at once: the writer never starts a new log in its place.
    await expect(writer.append(issuanceDraft())).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await writer.close();
  });

  it('tells, with no traffic at all, that the store is gone within its idle check', async () => {
    const { store, path } = await sqlite();
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'vanish-idle', idleCheckMs: 50 });
    await writer.append(issuanceDraft());
    expect(writer.ready()).toBe(true);
    rmSync(`${path}-wal`, { force: true });
    await until(() => !writer.ready());
    expect(writer.notReadyReason()).toMatch(/write-ahead log .* was removed or replaced/);
    await writer.close();
  });

  it('is not ready while idle checks fail, and ready again once the store answers', async () => {
    const { store } = await sqlite();
    let down = false;
    const check = () => (down ? Promise.reject(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })) : store.check());
    const append = (a: Parameters<RecordStore['append']>[0]) => (down ? Promise.reject(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' })) : store.append(a));
    const wrapped = new Proxy(store, {
      get: (t, k) => (k === 'check' ? check : k === 'append' ? append : typeof Reflect.get(t, k) === 'function' ? (Reflect.get(t, k) as Function).bind(t) : Reflect.get(t, k)),
    }) as RecordStore;
    const writer = new RecordWriter({ store: wrapped, signer, log: silentLogger, logId: 'idle-down', idleCheckMs: 20, probeIntervalMs: 20 });
    await writer.open();
    await writer.append(issuanceDraft());
    down = true;
    await until(() => !writer.ready());
    expect(writer.notReadyReason()).toMatch(/connection refused/);
    down = false;
    await until(() => writer.ready());
    await writer.close();
  });
});

describe('SqliteRecordStore.open and a missing file', () => {
  it('refuses to start new logs where a store was removed, and a reader never creates one', async () => {
    const { store, path } = await sqlite();
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'was-here', idleCheckMs: 0 });
    await writer.append(issuanceDraft());
    await writer.close();
    await store.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    await expect(SqliteRecordStore.open(path)).rejects.toThrow(/is missing, but logs were written there before/);
    await expect(SqliteRecordStore.open(path, { readonly: true })).rejects.toThrow(/does not exist/);
    await expect(SqliteRecordStore.open(path, { create: 'never' })).rejects.toThrow(/does not exist/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(path)).toBe(false);
    // On purpose (`linkgw migrate`), a new store can be made there.
    const fresh = await SqliteRecordStore.open(path, { create: 'always' });
    stores.push(fresh);
    expect(await fresh.logs()).toEqual([]);
  });
});
