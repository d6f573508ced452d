/**
 * Is a Redis cache hit cheaper than computing the code? Measures, in one process against the Redis at
 * LINKGW_REDIS_URL (default redis://127.0.0.1:6379/15):
 *   compute   AgencyCodec encode one / decode one (and 64 per call, per code, for reference)
 *   redis     ConversionCache lookups with the local tier off: key HMAC + GET + unseal, auto-pipelined,
 *             with 1 and 64 lookups in flight; and the parts: a bare GET, the key HMAC, the unseal
 *   local     an in-process LRU hit
 * Prints µs/op (median of 5 rounds; with 64 in flight, wall time / ops) and writes
 * bench/results/micro-redis.json and .md.
 *
 *   npx tsx bench/micro/redis-vs-compute.bench.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConversionCache } from '../../src/cache/conversion-cache.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { personalNumberCheckDigit } from '../../src/core/personal-number.js';
import { KeyedSealer } from '../../src/core/keyed-sealer.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';

const URL = process.env.LINKGW_REDIS_URL || 'redis://127.0.0.1:6379/15';
const ROUNDS = 5;
const prefix = `bench-${randomBytes(4).toString('hex')}:`;
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'results');

function numbersOf(n: number): number[] {
  const a: number[] = [];
  for (let i = 0; i < n; i++) {
    const first11 = String((i * 7_919_003 + 12_345_678_901) % 100_000_000_000).padStart(11, '0');
    a.push(Number(first11 + String(personalNumberCheckDigit(first11))));
  }
  return a;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** µs per op of a synchronous function. */
function syncBench(ops: number, f: (i: number) => void): number {
  for (let i = 0; i < Math.min(ops, 20_000); i++) f(i);
  const r: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) f(i);
    r.push(Number(process.hrtime.bigint() - t) / 1e3 / ops);
  }
  return median(r);
}

/** µs per op (wall time / ops) of an async function with `inFlight` calls outstanding at all times. */
async function asyncBench(ops: number, inFlight: number, f: (i: number) => Promise<unknown>): Promise<number> {
  const once = async (n: number) => {
    let next = 0;
    const worker = async () => {
      while (next < n) await f(next++);
    };
    const t = process.hrtime.bigint();
    await Promise.all(Array.from({ length: inFlight }, worker));
    return Number(process.hrtime.bigint() - t) / 1e3 / n;
  };
  await once(Math.min(ops, 2_000));
  const r: number[] = [];
  for (let k = 0; k < ROUNDS; k++) r.push(await once(ops));
  return median(r);
}

async function main(): Promise<void> {
  const N = 4096;
  const numbers = numbersOf(N);
  const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]) };
  const codec = new AgencyCodec(keys);
  const codes = codec.encodeMany('pension', numbers);
  const secret = randomBytes(32);

  const conn = new RedisConnection({ url: URL, keyPrefix: prefix, commandTimeoutMs: 1000 });
  const t0 = Date.now();
  while (conn.state() !== 'up') {
    if (Date.now() - t0 > 5000) throw new Error(`no Redis at ${URL}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  let misses = 0;
  const cache = new ConversionCache({
    cacheSecret: secret,
    redis: conn,
    localMax: 0,
    observer: { onLookup: (tier, outcome, n) => void (tier === 'redis' && outcome === 'miss' && (misses += n)) },
  });
  // Fill Redis: number→code and code→number for every number.
  for (let i = 0; i < N; i += 256) {
    cache.putCodes('pension', numbers.slice(i, i + 256), codes.slice(i, i + 256));
    cache.putNumbers('pension', codes.slice(i, i + 256), codec.decodeMany('pension', codes.slice(i, i + 256)));
  }
  await conn.client.ping();
  const sealer = new KeyedSealer(secret, { name: 'bench-key', seal: 'bench-seal' }, prefix);
  const rawKey = `${prefix}raw`;
  const sealed = sealer.seal(rawKey, Buffer.from(codes[0]!, 'latin1'));
  await conn.client.set(rawKey, sealed);
  const local = new ConversionCache({ cacheSecret: secret });
  local.putCodes('pension', numbers, codes);

  const rows: { name: string; inFlight: number | null; usPerOp: number }[] = [];
  const add = (name: string, inFlight: number | null, us: number) => {
    rows.push({ name, inFlight, usPerOp: Math.round(us * 100) / 100 });
    console.log(`${name.padEnd(52)} ${String(inFlight ?? '-').padStart(3)}  ${us.toFixed(2).padStart(8)} µs/op`);
  };

  const m = N - 1;
  add('compute: encode one (AgencyCodec.encode)', null, syncBench(100_000, (i) => codec.encode('pension', numbers[i & m]!)));
  add('compute: decode one (AgencyCodec.decode)', null, syncBench(100_000, (i) => codec.decode('pension', codes[i & m]!)));
  add('compute: encodeMany 64, per code', null, syncBench(5_000, (i) => codec.encodeMany('pension', numbers.slice((i * 64) & m, ((i * 64) & m) + 64))) / 64);
  add('local LRU hit (getCodes, one number)', 1, await asyncBench(100_000, 1, (i) => local.getCodes('pension', [numbers[i & m]!])));
  add('part: key name HMAC', null, syncBench(100_000, (i) => sealer.name('number→code', 1, 'pension', numbers[i & m]!)));
  add('part: unseal (per-entry key + AES-256-GCM open)', null, syncBench(100_000, () => sealer.open(rawKey, sealed)));
  add('part: seal', null, syncBench(50_000, () => sealer.seal(rawKey, Buffer.from(codes[0]!, 'latin1'))));
  for (const inFlight of [1, 64]) {
    const ops = inFlight === 1 ? 5_000 : 40_000;
    add('redis: bare GET (getBuffer)', inFlight, await asyncBench(ops, inFlight, () => conn.client.getBuffer(rawKey)));
    add('redis hit: number→code (HMAC + GET + unseal)', inFlight, await asyncBench(ops, inFlight, (i) => cache.getCodes('pension', [numbers[i & m]!])));
    add('redis hit: code→number (HMAC + GET + unseal)', inFlight, await asyncBench(ops, inFlight, (i) => cache.getNumbers('pension', [codes[i & m]!])));
  }
  if (misses) console.warn(`warning: ${misses} Redis misses during the hit benchmarks`);

  const info = await conn.client.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const ks = await conn.client.keys(`${prefix}*`);
  for (let i = 0; i < ks.length; i += 500) await conn.client.del(...ks.slice(i, i + 500));
  await conn.close();

  const get = (name: string, f: number | null) => rows.find((r) => r.name === name && r.inFlight === f)!.usPerOp;
  const enc = get('compute: encode one (AgencyCodec.encode)', null);
  const dec = get('compute: decode one (AgencyCodec.decode)', null);
  const hit1 = get('redis hit: number→code (HMAC + GET + unseal)', 1);
  const hit64 = get('redis hit: number→code (HMAC + GET + unseal)', 64);
  const dhit1 = get('redis hit: code→number (HMAC + GET + unseal)', 1);
  const dhit64 = get('redis hit: code→number (HMAC + GET + unseal)', 64);
  const summary = {
    issueHitVsEncode: { in1: Math.round((hit1 / enc) * 10) / 10, in64: Math.round((hit64 / enc) * 10) / 10 },
    decodeHitVsDecode: { in1: Math.round((dhit1 / dec) * 10) / 10, in64: Math.round((dhit64 / dec) * 10) / 10 },
  };
  const env = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', redis: redisVersion, url: URL.replace(/\/\/[^@]*@/, '//***@'), date: new Date().toISOString() };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'micro-redis.json'), JSON.stringify({ env, rows, summary }, null, 2) + '\n');
  const md = [
    '# Redis cache hit vs computing a code',
    '',
    `Node ${env.node}, ${env.cpus} CPUs (${env.cpu}), Redis ${env.redis} on loopback, ${env.date}.`,
    'Median of 5 rounds; with 64 in flight, µs/op is wall time / ops (throughput), not latency.',
    '`npx tsx bench/micro/redis-vs-compute.bench.ts`',
    '',
    '| operation | in flight | µs/op |',
    '| --- | ---: | ---: |',
    ...rows.map((r) => `| ${r.name} | ${r.inFlight ?? '–'} | ${r.usPerOp.toFixed(2)} |`),
    '',
    `A Redis hit for number→code costs ${summary.issueHitVsEncode.in1}× an inline encode at 1 in flight and ` +
      `${summary.issueHitVsEncode.in64}× at 64 in flight; for code→number ${summary.decodeHitVsDecode.in1}× and ` +
      `${summary.decodeHitVsDecode.in64}× an inline decode.`,
    '',
  ].join('\n');
  writeFileSync(join(out, 'micro-redis.md'), md);
  console.log('\n' + md);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
