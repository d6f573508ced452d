/**
 * The record store's side of bulk issuance: batch records of 10,000 persons each committed through the writer
 * (persons as one sorted run, issue 19), then the person index merged behind them. Reports records committed
 * per second (codes/s = persons/s), and the merge rate. Wall time on the machine as it is: run it quiet.
 *
 *   npx tsx bench/micro/person-runs.bench.ts [records=200] [store=sqlite|postgres]
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOf } from '../../src/core/persons-run.js';
import { newRecordId } from '../../src/core/record-id.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { openRecordStore } from '../../src/records/open-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { bulkIssuanceRecord } from '../../src/service/records-drafts.js';
import pg from 'pg';

const records = Number(process.argv[2] ?? 200);
const kind = process.argv[3] ?? 'sqlite';
const PER = 10_000;
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const dir = mkdtempSync(join(tmpdir(), 'linkgw-runs-'));
const pgBase = process.env.LINKGW_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `bench_runs_${process.pid}`;
const store = await openRecordStore(kind === 'postgres' ? { url: `${pgBase}?schema=${schema}`, sqlitePath: '' } : { sqlitePath: join(dir, 'records.sqlite') }, { timeoutMs: 30_000 });
const writer = new RecordWriter({ store, signer: new KeyObjectSigner('k', privateKey, publicKey), log: silentLogger, logId: 'bench', appendTimeoutMs: 60_000 });
await writer.open();
// The persons are made before the clock starts: this measures the store, not the mapping.
const drafts = Array.from({ length: records }, () => bulkIssuanceRecord(newRecordId(), runOf(randomBytes(16 * PER)), 'pension', Date.now()));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
// Four streams, as the bulk profile: each waits for its record before sending the next.
let next = 0;
await Promise.all(Array.from({ length: 4 }, async () => {
  while (next < drafts.length) await writer.append(drafts[next++]!);
}));
const committed = performance.now() - t0;
await store.flushIndex();
const indexed = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  node: process.version, store: kind, records, persons: records * PER,
  committedPerSecond: Math.round((records * PER) / (committed / 1000)),
  indexedPerSecond: Math.round((records * PER) / (indexed / 1000)),
  mainThreadCpuMsPerRecord: +((cpu.user + cpu.system) / 1000 / records).toFixed(2),
}));
await writer.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
if (kind === 'postgres') {
  const c = new pg.Client({ connectionString: pgBase });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}
