/**
 * The access record's cost on the request path: the real RecordWriter and SQLite store of a build (default
 * this checkout's dist/; `--dist DIR` for another build, such as the hash-chain version before the
 * transparency log), appending issuance records as requests would:
 *
 *   serial   one record at a time, each waiting for its commit (batches of one: the worst case per record)
 *   64       64 requests in flight (batches form while a commit runs)
 *
 * Prints, per record: main-thread busy time (event-loop utilisation, what the request path pays), CPU of the
 * whole process (main and SQLite thread), and wall time. Compare two builds in one run on this machine;
 * absolute numbers move with the machine's load.
 *
 *   npm run build && npx tsx bench/micro/record-path.bench.ts [--dist DIR] [--records 3000]
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { dist: { type: 'string', default: join(import.meta.dirname, '..', '..', 'dist') }, records: { type: 'string', default: '3000' } } });
const dist = resolve(args.dist!);
const N = Number(args.records);

const load = async <T>(p: string): Promise<T> => (await import(pathToFileURL(join(dist, p)).href)) as T;
const { SqliteRecordStore } = await load<typeof import('../../src/records/sqlite-store.js')>('records/sqlite-store.js');
const { RecordWriter } = await load<typeof import('../../src/records/record-writer.js')>('records/record-writer.js');
const { KeyObjectSigner } = await load<typeof import('../../src/keys/signer.js')>('keys/signer.js');
const { silentLogger } = await load<typeof import('../../src/log/logger.js')>('log/logger.js');

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);

const draft = (i: number) => ({
  recordId: randomBytes(15).toString('hex').toUpperCase().slice(0, 24),
  subject: randomBytes(13).toString('hex').toUpperCase().slice(0, 26),
  requestedAt: 1_790_000_000_000 + i,
  providedAt: 1_790_000_000_000 + i,
  requester: 'pension',
  provider: 'tax',
  procedure: 'pension.eligibility',
  legalBasisRow: 'B2-001',
  item: 'income',
  outcome: 2 as const,
  nonDisclosable: false,
});

async function run(mode: 'serial' | 64): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), 'linkgw-record-path-'));
  const store = await SqliteRecordStore.open(join(dir, 'records.sqlite'));
  const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'bench' } as ConstructorParameters<typeof RecordWriter>[0]);
  // Warm up: the store's statements, the first checkpoint, JIT.
  for (let i = 0; i < 200; i++) await writer.append(draft(i));
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (mode === 'serial') for (let i = 0; i < N; i++) await writer.append(draft(i));
  else {
    let next = 0;
    await Promise.all(Array.from({ length: mode }, async () => {
      while (next < N) await writer.append(draft(next++));
    }));
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  await writer.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  const us = (ms: number) => Math.round((ms * 1000) / N);
  return {
    mode: String(mode),
    'main µs/record': us(elu.active),
    'process CPU µs/record': Math.round((cpu.user + cpu.system) / N),
    'wall µs/record': us(wall),
    'records/s': Math.round(N / (wall / 1000)),
  };
}

console.log(`node ${process.version}, ${dist}, ${N} records`);
const rows = [await run('serial'), await run(64)];
console.table(rows);
