/**
 * `records verify` on a live store (issue 12 item 5): one snapshot while a writer keeps appending and signing
 * (reads outside one snapshot see a checkpoint signed after the records were read, and report sealed records
 * as missing); incremental verification from a checkpoint verified earlier; every problem reported, up to a
 * limit.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { latestCheckpointLines } from '../../src/records/log-commands.js';
import type { RecordStore, SnapshotReader } from '../../src/records/record-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { parseSavedCheckpoints, verifyStore } from '../../src/records/verify-store.js';
import type { StoreKind } from '../helpers/gateway-harness.js';
import { openTestStore, recordDraft, type StoreFixture } from '../helpers/record-stores.js';
import { until } from '../helpers/wait.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const keys = new Map([['seal-1', publicKey]]);
const LOG = 'replica-l';
const T0 = Date.parse('2026-01-01T00:00:00Z');

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function live(kind: StoreKind): Promise<{ f: StoreFixture; writer: RecordWriter; write(n: number): Promise<void> }> {
  const f = await openTestStore(kind);
  cleanups.push(() => f.close());
  const writer = new RecordWriter({ store: f.store, signer, log: silentLogger, logId: LOG, origin: `linkgw/records/${LOG}`, checkpointIntervalMs: 5 });
  cleanups.push(() => writer.close());
  let i = 0;
  return {
    f,
    writer,
    // Appends n records and waits until a checkpoint covering them is stored.
    write: async (n) => {
      await writer.appendAll(Array.from({ length: n }, () => recordDraft(T0 + i++)));
      const size = i;
      await until(async () => (await f.store.latestCheckpoints())[0]?.size === size, 10_000);
    },
  };
}

/** The store, with `during` run once right after verification has read the logs' sizes. */
function writesDuring(store: RecordStore, during: () => Promise<void>, snapshot: boolean): RecordStore {
  const once = async () => {
    const d = during;
    during = async () => undefined;
    await d();
  };
  // Reads outside one snapshot: each read sees whatever was committed when it ran (what verify did before).
  const separate: SnapshotReader = {
    logs: async () => {
      const l = await store.logs();
      await once();
      return l;
    },
    checkpoints: (id) => store.checkpoints(id),
    purges: async () => [],
    nodes: (id, ids) => store.nodes(id, ids),
    readLeaves: (id, a, b, n) => store.readLeaves(id, a, b, n),
    persons: async () => new Map(),
    firstLeafFrom: async () => null,
  };
  return Object.assign(Object.create(store) as RecordStore, {
    readSnapshot: <T>(fn: (r: SnapshotReader) => Promise<T>) =>
      snapshot
        ? store.readSnapshot((r) =>
            fn({
              ...r,
              logs: async () => {
                const l = await r.logs();
                await once();
                return l;
              },
            }),
          )
        : fn(separate),
  });
}

describe.each<StoreKind>(['sqlite', 'postgres'])('records verify on a live %s store', (kind) => {
  it('reads one snapshot: records signed while it runs are neither missing nor half seen', async () => {
    const { f, write } = await live(kind);
    await write(40);
    // Reads outside one snapshot: the checkpoint signed meanwhile covers records the size read earlier left out.
    const [before] = await verifyStore(writesDuring(f.store, () => write(30), false), keys);
    expect(before!.problem).toMatchObject({ kind: 'deleted', detail: expect.stringMatching(/signed a checkpoint of 70 leaves; only 40 remain/) });
    // In one snapshot the same interleaving passes: the store as it was when verification began.
    const [after] = await verifyStore(writesDuring(f.store, () => write(30), true), keys);
    expect(after).toMatchObject({ problem: null, records: 70, treeSize: 70, signedSize: 70 });
    expect((await verifyStore(f.store, keys))[0]).toMatchObject({ problem: null, records: 100 });
  });

  it('passes while a writer keeps appending, with small pages', async () => {
    const { f, writer } = await live(kind);
    let stop = false;
    let written = 0;
    const writing = (async () => {
      while (!stop) {
        await writer.appendAll(Array.from({ length: 20 }, () => recordDraft(T0 + written++)));
      }
    })();
    await until(async () => written >= 200, 20_000);
    const reports = [];
    for (let run = 0; run < 3; run++) reports.push((await verifyStore(f.store, keys, { pageSize: 7 }))[0]!);
    stop = true;
    await writing;
    for (const r of reports) expect(r).toMatchObject({ problem: null, problemCount: 0 });
    expect(reports.at(-1)!.records).toBeGreaterThanOrEqual(200);
  });

  it('verifies incrementally from a checkpoint verified earlier, and catches a record tampered with after it', async () => {
    const { f, write } = await live(kind);
    await write(24);
    const saved = parseSavedCheckpoints((await latestCheckpointLines(f.store)).map((l) => JSON.stringify(l)).join('\n'));
    await write(16);
    expect((await verifyStore(f.store, keys, { from: saved }))[0]).toMatchObject({ problem: null, from: 24, records: 16, treeSize: 40 });
    // A record before the saved point is not read again (the full verify still finds it).
    await f.exec("UPDATE access_records SET item = 'x' WHERE leaf_index = 5");
    expect((await verifyStore(f.store, keys, { from: saved }))[0]!.problem).toBeNull();
    expect((await verifyStore(f.store, keys))[0]!.problem).toMatchObject({ kind: 'changed', leafIndex: 5 });
    await f.exec("UPDATE access_records SET item = 'x' WHERE leaf_index = 30");
    expect((await verifyStore(f.store, keys, { from: saved }))[0]!.problem).toMatchObject({ kind: 'changed', leafIndex: 30 });
  });

  it('refuses to start from a saved checkpoint the stored tree no longer matches', async () => {
    const { f, write } = await live(kind);
    await write(24);
    const saved = parseSavedCheckpoints((await latestCheckpointLines(f.store)).map((l) => JSON.stringify(l)).join('\n'));
    await write(8);
    await f.exec(`UPDATE log_nodes SET hash = ${f.blob(Buffer.alloc(32, 9))} WHERE level = 4 AND idx = 0`);
    const [r] = await verifyStore(f.store, keys, { from: saved });
    expect(r!.problems[0]).toMatchObject({ kind: 'changed', detail: expect.stringMatching(/differs from the checkpoint verified earlier/) });
    // ... and verifies from the start instead, where the changed node shows.
    expect(r).toMatchObject({ from: 0, records: 32 });
  });

  it('reports every problem, up to the limit, counting the rest', async () => {
    const { f, write } = await live(kind);
    await write(20);
    await f.exec("UPDATE access_records SET item = 'x' WHERE leaf_index IN (2, 9, 11, 17)");
    const [all] = await verifyStore(f.store, keys);
    expect(all!.problems.filter((p) => p.recordId).map((p) => p.leafIndex)).toEqual([2, 9, 11, 17]);
    const [some] = await verifyStore(f.store, keys, { maxProblems: 2 });
    expect(some!.problems).toHaveLength(2);
    expect(some!.problemCount).toBe(all!.problemCount);
  });
});
