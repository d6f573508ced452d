/**
 * Mapping engine micro-benchmark: inline against pooled, for single IssueCode-style calls (1, 16 and 64 in
 * flight, so the pool can coalesce them) and for bulk issuance (1,000 and 10,000 numbers per call).
 *
 *   npm run build && npx tsx bench/micro/engine.bench.ts [--seconds=1.5] [--rounds=3]
 *
 * The pool's threads load the compiled worker from dist/, so build first. Writes bench/results/micro-engine.json
 * and the table generated from it, bench/results/micro-engine.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { InlineEngine, type MappingEngine } from '../../src/engine/mapping-engine.js';
import { PooledEngine } from '../../src/engine/pooled-engine.js';
import { population } from '../../test/helpers/population.js';
import { renderMarkdown, type EngineBenchResult, type EngineBenchRow } from './report.js';

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  const v = a ? Number(a.slice(name.length + 3)) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
const SECONDS = arg('seconds', 1.5);
const ROUNDS = Math.round(arg('rounds', 3));
const WARM_SECONDS = 0.5;
const POOL_BATCH = 2048;
const OUT = new URL('../results/', import.meta.url);

const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]) };
const numbers = population(20_000, 42).map((s) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad benchmark number');
  return c.value;
});

interface Case {
  readonly scenario: 'single' | 'bulk';
  readonly inFlight: number;
  readonly batch: number;
}

/** Closed loop: `inFlight` callers each issue one call after another for `seconds`. */
async function measure(engine: MappingEngine, c: Case, seconds: number) {
  let calls = 0;
  const lat: number[] = [];
  let stop = false;
  let cursor = 0;
  const next = () => {
    const at = cursor;
    cursor = (cursor + c.batch) % (numbers.length - c.batch);
    return c.batch === 1 ? [numbers[at]!] : numbers.slice(at, at + c.batch);
  };
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(
    Array.from({ length: c.inFlight }, async () => {
      while (!stop) {
        const input = next();
        const s = performance.now();
        const codes = await engine.issue('pension', input);
        lat.push(performance.now() - s);
        if (codes.length !== input.length) throw new Error('wrong number of codes');
        calls++;
        // Inline calls never wait on I/O: yield now and then so the timer can fire.
        if (engine.kind === 'inline' && calls % 64 === 0) await new Promise((r) => setImmediate(r));
      }
    }),
  );
  clearTimeout(timer);
  const elapsed = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  lat.sort((a, b) => a - b);
  const n = calls;
  const codes = n * c.batch;
  return {
    calls: n,
    codes,
    seconds: elapsed,
    codesPerSecond: codes / elapsed,
    usPerCall: (elapsed * 1e6) / n,
    mainUsPerCode: (elu.active * 1000) / codes,
    p50Us: lat[Math.floor(n * 0.5)]! * 1000,
    p99Us: lat[Math.min(n - 1, Math.floor(n * 0.99))]! * 1000,
  };
}

const cases: Case[] = [
  { scenario: 'single', inFlight: 1, batch: 1 },
  { scenario: 'single', inFlight: 16, batch: 1 },
  { scenario: 'single', inFlight: 64, batch: 1 },
  { scenario: 'bulk', inFlight: 1, batch: 1000 },
  { scenario: 'bulk', inFlight: 1, batch: 10_000 },
  { scenario: 'bulk', inFlight: 4, batch: 1000 },
  { scenario: 'bulk', inFlight: 4, batch: 10_000 },
];

const engines: { label: string; threads: number; make: () => Promise<MappingEngine> }[] = [
  { label: 'inline', threads: 0, make: async () => new InlineEngine(keys) },
  { label: 'pool', threads: 1, make: () => PooledEngine.create(keys, { threads: 1, batchSize: POOL_BATCH }) },
  { label: 'pool', threads: 2, make: () => PooledEngine.create(keys, { threads: 2, batchSize: POOL_BATCH }) },
];

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`node ${process.version}, ${cpu}, ${cpus().length} cores; ${ROUNDS} × ${SECONDS} s per case`);
  const runs = new Map<string, { row: Omit<EngineBenchRow, keyof Awaited<ReturnType<typeof measure>>>; results: Awaited<ReturnType<typeof measure>>[] }>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const e of engines) {
      const engine = await e.make();
      try {
        for (const c of cases) {
          await measure(engine, c, WARM_SECONDS);
          const r = await measure(engine, c, SECONDS);
          const id = `${c.scenario}/${e.label}/${e.threads}/${c.inFlight}/${c.batch}`;
          let entry = runs.get(id);
          if (!entry) {
            entry = { row: { scenario: c.scenario, engine: e.label as 'inline' | 'pool', threads: e.threads, inFlight: c.inFlight, batch: c.batch }, results: [] };
            runs.set(id, entry);
          }
          entry.results.push(r);
          console.log(
            `round ${round + 1} ${id.padEnd(24)} ${Math.round(r.codesPerSecond).toLocaleString('en-US').padStart(10)} codes/s ` +
              `${r.usPerCall.toFixed(1).padStart(8)} µs/call  main ${r.mainUsPerCode.toFixed(3)} µs/code`,
          );
        }
      } finally {
        await engine.close();
      }
    }
  }

  const rows: EngineBenchRow[] = [];
  for (const c of cases) {
    for (const e of engines) {
      const entry = runs.get(`${c.scenario}/${e.label}/${e.threads}/${c.inFlight}/${c.batch}`)!;
      const sorted = [...entry.results].sort((a, b) => a.codesPerSecond - b.codesPerSecond);
      rows.push({ ...entry.row, ...sorted[Math.floor(sorted.length / 2)]! });
    }
  }
  const result: EngineBenchResult = {
    benchmark: 'micro-engine',
    date: new Date().toISOString(),
    node: process.version,
    cpu,
    cores: cpus().length,
    secondsPerRun: SECONDS,
    rounds: ROUNDS,
    poolBatchSize: POOL_BATCH,
    loadAverage: [loadBefore, loadavg()[0]!],
    rows,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(new URL('micro-engine.json', OUT), JSON.stringify(result, null, 2) + '\n');
  const md = renderMarkdown(result);
  writeFileSync(new URL('micro-engine.md', OUT), md);
  console.log('\n' + md);
}

await main();
