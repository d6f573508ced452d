/**
 * The benchmark run: `npx tsx bench/run.ts [--smoke] [--only NAME[,NAME…]] [--profiles P[,P…]] [--bulk-codes N] [--keep]`.
 *
 * Seeds a population, then for each target of bench/budget.json (the two bare grpc-js baselines, the
 * gateway in its default configuration, and the configuration matrix) starts it as a child process with its
 * own fresh data directory on free 127.0.0.1 ports, waits until it serves, issues the seeded codes through it
 * (gateways), checks a few answers by content, runs the target's profiles with ghz (and the Node bulk client),
 * stops it, and finally checks the budget, writes bench/results/bench-*.json and the results table of
 * BENCHMARKS.md, and exits non-zero when the budget is broken or a check failed.
 *
 *   --smoke   every profile of every target for a few seconds at a low rate, checks only (no timing
 *             thresholds); writes bench/results/tmp/smoke-*.json and leaves BENCHMARKS.md alone
 *   --only    just these targets; results go to bench/results/tmp/only-*.json (BENCHMARKS.md is left alone)
 *   --profiles  just these profiles of each target (issue, query, records, bulk, mixed, capacity)
 *   --bulk-codes  the bulk profile issues this many codes for distinct new persons with the Node client
 *             (4 streams of 10,000-number messages), instead of its timed ghz and Node runs: the bulk profile at
 *             population scale. Its own command, as it takes minutes (`npm run bench:bulk-10m`):
 *               npx tsx bench/run.ts --only echo,gateway,gateway-postgres --profiles bulk --bulk-codes 10000000
 *   --keep    keep the targets' data directories (records) and ghz's raw reports (every call) under
 *             bench/results/tmp/run/
 *
 * Environment: LINKGW_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test; each run uses a fresh
 * schema, dropped afterwards), LINKGW_BENCH_REDIS_URL (default redis://127.0.0.1:6379/8).
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { AgencyClient } from '../src/cli/agency-client.js';
import { Outcome } from '../src/gen/linkage/v1/records_pb.js';
import { BENCH_DIR, loadBudget, RESULTS_DIR, ROOT, TMP_DIR, type Budget, type ProfileName, type Target, type UnaryMethod } from './budget.js';
import type { BulkResult } from './bulk-client.js';
import { findGhz, runGhz, type GhzSummary, type Tool } from './ghz.js';
import { cpuWindow, installCleanup, runCommand, startServer, type Server } from './procs.js';
import { registryFor, startProviders } from './providers.js';
import { writeBenchmarksMd, writeSummaries, type CapacityStep, type Machine, type ProfileResult, type RunSummary, type TargetResult } from './report.js';
import { buildDataset, freshDataDir, readLines, type Dataset } from './seed.js';

const CALL: Record<UnaryMethod | 'IssueCodes', string> = {
  IssueCode: 'linkage.v1.LinkageGateway.IssueCode',
  QueryInformation: 'linkage.v1.LinkageGateway.QueryInformation',
  ListAccessRecords: 'linkage.v1.AccessRecords.ListAccessRecords',
  IssueCodes: 'linkage.v1.LinkageGateway.IssueCodes',
};

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    profiles: { type: 'string' },
    'bulk-codes': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const SMOKE = args.smoke!;
const ONLY = args.only ? args.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
const PROFILES = args.profiles ? (args.profiles.split(',').map((s) => s.trim()).filter(Boolean) as ProfileName[]) : null;
const BULK_CODES = args['bulk-codes'] !== undefined ? Number(args['bulk-codes']) : undefined;
if (BULK_CODES !== undefined && !(Number.isInteger(BULK_CODES) && BULK_CODES > 0)) throw new Error('--bulk-codes: a positive integer');
const MODE: RunSummary['mode'] = SMOKE ? 'smoke' : ONLY || PROFILES || BULK_CODES !== undefined ? 'partial' : 'full';
const PG_URL = process.env.LINKGW_BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.LINKGW_BENCH_REDIS_URL || 'redis://127.0.0.1:6379/8';
/** Hard limits on the whole run (a --bulk-codes run: allowing 20,000 codes/s per target). */
const RUN_LIMIT_S = SMOKE ? 240 : 1500 + (BULK_CODES !== undefined ? Math.ceil(BULK_CODES / 20_000) * 3 : 0);

const b: Budget = loadBudget();
const t0 = Date.now();
const RUN_DIR = join(TMP_DIR, 'run');
const LOG_DIR = join(RUN_DIR, 'logs');
const OUT_DIR = join(RUN_DIR, 'ghz');

function say(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${s}s] ${msg}\n`);
}

function timeLeft(): number {
  return RUN_LIMIT_S - (Date.now() - t0) / 1000;
}

// ---------------------------------------------------------------------------------------------------------
// Machine and services

async function probePostgres(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? 'unknown';
  } catch {
    return null;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function probeRedis(): Promise<string | null> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const info = await r.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

async function machine(tool: Tool, postgres: string | null, redis: string | null): Promise<Machine> {
  const go = await runCommand('go', ['version'], { cwd: ROOT, timeoutMs: 10_000 }).catch(() => null);
  const head = await runCommand('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, timeoutMs: 10_000 });
  const dirty = await runCommand('git', ['status', '--porcelain'], { cwd: ROOT, timeoutMs: 10_000 });
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: totalmem() / 2 ** 30,
    os: `${type()} ${release()}`,
    node: b.nodeFlags.length ? `${process.version} (${b.nodeFlags.join(' ')})` : process.version,
    ghz: tool.version,
    ghzSource: tool.source,
    go: go && go.code === 0 ? go.stdout.trim().replace(/^go version /, 'Go ').replace(/ [a-z0-9]+\/[a-z0-9]+$/, '') : null,
    postgres,
    redis,
    loadAverageStart: loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit: head.code === 0 ? head.stdout.trim() : null,
    gitDirty: dirty.code === 0 && dirty.stdout.trim().length > 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Targets

interface Running {
  readonly server: Server;
  readonly dataDir: string;
  readonly pgSchema?: string;
  /** The providing agencies' own process (gateway and relay targets), whose CPU is measured apart. */
  readonly providers?: Server;
}

/** The processes whose CPU a profile measures. */
function pidsOf(run: Running): Record<string, number | undefined> {
  return { target: run.server.proc.pid, ...(run.providers ? { providers: run.providers.proc.pid } : {}) };
}

function substitute(env: Record<string, string>, pgSchema: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('$')) continue;
    out[k] = v === '$PG' ? `${PG_URL}?schema=${pgSchema}` : v === '$REDIS' ? REDIS_URL : v;
  }
  return out;
}

async function startTarget(t: Target, ds: Dataset): Promise<Running> {
  const dataDir = freshDataDir(ds.templateDir, join(RUN_DIR, `data-${t.name}`));
  const logFile = join(LOG_DIR, `${t.name}.log`);
  rmSync(logFile, { force: true });
  const common = { ...process.env, LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0' };
  const providers = t.kind === 'echo' ? undefined : await startProviders({ name: `${t.name}-providers`, dataDir, env: common, logFile: join(LOG_DIR, `${t.name}-providers.log`), nodeFlags: b.nodeFlags });
  const addresses = (providers?.ready.providers ?? {}) as Record<string, string>;
  try {
    return { ...(await startMain(t, dataDir, logFile, common, addresses)), ...(providers ? { providers } : {}) };
  } catch (e) {
    await providers?.stop();
    throw e;
  }
}

async function startMain(t: Target, dataDir: string, logFile: string, common: NodeJS.ProcessEnv, providers: Record<string, string>): Promise<Running> {
  if (t.kind === 'gateway') {
    const usesPg = Object.values(t.env ?? {}).includes('$PG');
    const pgSchema = usesPg ? `bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}` : undefined;
    // The providing agencies are the bench's provider process, not the embedded simulated agencies.
    const env = { ...common, LINKGW_SIMULATE: '0', LINKGW_AGENCIES: registryFor(dataDir, providers), ...substitute(b.gatewayEnv, pgSchema), ...substitute(t.env ?? {}, pgSchema) };
    const server = await startServer({
      name: t.name,
      command: process.execPath,
      args: [...b.nodeFlags, join(ROOT, 'dist', 'cli', 'main.js'), 'serve'],
      env,
      cwd: ROOT,
      logFile,
      readyMsg: 'gateway serving',
      timeoutMs: 60_000,
    });
    return { server, dataDir, ...(pgSchema ? { pgSchema } : {}) };
  }
  const server = await startServer({
    name: t.name,
    command: process.execPath,
    args: [...b.nodeFlags, '--import', 'tsx', join(BENCH_DIR, 'baseline', `${t.kind}-server.ts`)],
    env: { ...common, BENCH_RECORDS_PER_LIST: String(b.profiles.records.baselineRecordsPerList), ...(t.kind === 'relay' ? { BENCH_PROVIDERS: JSON.stringify(providers) } : {}) },
    cwd: ROOT,
    logFile,
    readyMsg: 'baseline serving',
    timeoutMs: 60_000,
  });
  return { server, dataDir };
}

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  try {
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } catch (e) {
    say(`could not drop schema ${schema}: ${(e as Error).message}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Profiles

interface Ctx {
  readonly t: Target;
  readonly ds: Dataset;
  readonly run: Running;
  readonly ghz: string;
}

function tls(ctx: Ctx, agency: string) {
  const pki = join(ctx.run.dataDir, 'pki');
  return { ca: join(pki, 'ca.crt'), cert: join(pki, `${agency}.crt`), key: join(pki, `${agency}.key`), cname: 'localhost' };
}

const timing = () => (SMOKE ? { warmupSeconds: b.smoke.warmupSeconds, measureSeconds: b.smoke.measureSeconds } : { warmupSeconds: b.load.warmupSeconds, measureSeconds: b.load.measureSeconds });

function unary(
  ctx: Ctx,
  o: { name: string; method: UnaryMethod; agency: string; data: string; rate: number; expect?: string; connections?: number; workers?: number; warmupSeconds?: number; measureSeconds?: number; cpu?: boolean },
): Promise<GhzSummary> {
  const tm = timing();
  const warm = o.warmupSeconds ?? tm.warmupSeconds;
  const cpu = o.cpu === false ? null : measuredCpu(ctx, warm);
  return runGhz({
    name: `${ctx.t.name}:${o.name}`,
    call: CALL[o.method],
    address: ctx.run.server.address,
    tls: tls(ctx, o.agency),
    protoset: ctx.ds.protoset,
    dataFile: o.data,
    rps: o.rate,
    warmupSeconds: o.warmupSeconds ?? tm.warmupSeconds,
    measureSeconds: o.measureSeconds ?? tm.measureSeconds,
    connections: o.connections ?? b.load.connections,
    workers: o.workers ?? b.load.workers,
    timeoutSeconds: b.load.timeoutSeconds,
    expect: o.expect ?? 'OK',
    outFile: join(OUT_DIR, `${ctx.t.name}-${o.name}.json`),
    ghz: ctx.ghz,
    keepReport: !!args.keep,
  }).then(({ report: _r, ...s }) => (cpu ? { ...s, ...perCall(cpu.stop(), s.count) } : s));
}

/** A CPU window over the target's processes that opens once the warm-up is over. */
function measuredCpu(ctx: Ctx, warmupSeconds: number): { stop(): Record<string, number> } {
  const w = cpuWindow(pidsOf(ctx.run));
  let started = false;
  const t = setTimeout(() => {
    started = true;
    w.start();
  }, warmupSeconds * 1000);
  return {
    stop() {
      clearTimeout(t);
      return started ? w.stop() : {};
    },
  };
}

/** CPU seconds of each process over a window, as CPU-µs per call of the `calls` tallied in it. */
function perCall(cpu: Record<string, number>, calls: number): { cpuUsPerCall?: Record<string, number> } {
  if (calls <= 0 || !Object.keys(cpu).length) return {};
  return { cpuUsPerCall: Object.fromEntries(Object.entries(cpu).map(([k, s]) => [k, Math.round((s * 1e6) / calls)])) };
}

/** Budget lines a unary run breaks (gateway targets of a full run only), and its check problems. */
function judge(ctx: Ctx, s: GhzSummary, method: UnaryMethod, label: string): { violations: string[]; problems: string[] } {
  const problems: string[] = [];
  const violations: string[] = [];
  if (s.problem) problems.push(`${ctx.t.name} ${label}: ${s.problem}`);
  if (s.count === 0) problems.push(`${ctx.t.name} ${label}: no calls completed`);
  else if (s.checksRatio < b.budget.checksPassRatio)
    problems.push(`${ctx.t.name} ${label}: checks ${(s.checksRatio * 100).toFixed(2)}% (expected ${s.expect}; got ${JSON.stringify(s.statusCodeDistribution)}${Object.keys(s.errors).length ? `; ${Object.keys(s.errors).slice(0, 3).join(' | ')}` : ''})`);
  if (!SMOKE && ctx.t.kind === 'gateway') {
    if (s.achievedRatio < b.budget.minAchievedRateRatio)
      violations.push(`${ctx.t.name} ${label}: dropped iterations: achieved ${s.achievedRps}/s of ${s.targetRps}/s (${(s.achievedRatio * 100).toFixed(1)}% < ${b.budget.minAchievedRateRatio * 100}%)`);
    if (!(s.p99Ms < b.budget[method].p99Ms)) violations.push(`${ctx.t.name} ${label}: p(99) ${s.p99Ms} ms ≥ ${b.budget[method].p99Ms} ms`);
  }
  return { violations, problems };
}

const rateOf = (method: UnaryMethod) => (SMOKE ? b.smoke.rate : b.budget[method].rate);

/** A gauge of the gateway's /metrics (NaN when absent). */
async function gauge(ctx: Ctx, name: string): Promise<number> {
  const ops = ctx.run.server.ready.ops;
  if (typeof ops !== 'string') return NaN;
  const text = await (await fetch(`http://${ops}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/**
 * Before the disclosure lookups of a gateway: waits (up to 15 minutes) until the person index holds every bulk
 * person written so far, so the profile measures lookups through the index, not the merge catching up.
 */
async function waitForPersonIndex(ctx: Ctx): Promise<{ waitedSeconds: number; backlogAtStart: number }> {
  const t0 = Date.now();
  const backlogAtStart = await gauge(ctx, 'linkgw_person_index_backlog');
  let backlog = backlogAtStart;
  while (backlog > 0 && Date.now() - t0 < 900_000) {
    await new Promise((r) => setTimeout(r, 500));
    backlog = await gauge(ctx, 'linkgw_person_index_backlog');
  }
  const waitedSeconds = Math.round((Date.now() - t0) / 100) / 10;
  if (backlogAtStart > 0) say(`${ctx.t.name}: person index took ${backlogAtStart} waiting persons in ${waitedSeconds} s${backlog > 0 ? ` (${backlog} still waiting)` : ''}`);
  return { waitedSeconds, backlogAtStart };
}

async function profileUnary(ctx: Ctx, profile: 'issue' | 'query' | 'records'): Promise<ProfileResult> {
  const p = b.profiles[profile];
  const personIndex = profile === 'records' && ctx.t.kind === 'gateway' ? await waitForPersonIndex(ctx) : undefined;
  const data = profile === 'issue' ? ctx.ds.files.issue : profile === 'query' ? ctx.ds.files.query : ctx.ds.files.records;
  const s = await unary(ctx, { name: profile, method: p.method, agency: p.agency, data, rate: rateOf(p.method) });
  const j = judge(ctx, s, p.method, profile);
  let recordsPerList: number | undefined;
  if (profile === 'records') {
    if (ctx.t.kind === 'gateway') recordsPerList = await sampleRecordsPerList(ctx);
    else recordsPerList = b.profiles.records.baselineRecordsPerList;
  }
  return { target: ctx.t.name, profile, method: p.method, runs: [s], ...(recordsPerList !== undefined ? { recordsPerList } : {}), ...(personIndex ? { personIndex } : {}), ...j };
}

async function sampleRecordsPerList(ctx: Ctx): Promise<number> {
  const entries = (JSON.parse(readFileSync(ctx.ds.files.records, 'utf8')) as { code: string }[]).slice(0, 20);
  const c = new AgencyClient({ address: ctx.run.server.address, agency: b.profiles.records.agency, pkiDir: join(ctx.run.dataDir, 'pki') });
  try {
    let n = 0;
    for (const e of entries) n += (await c.listRecords({ code: e.code, pageSize: b.profiles.records.pageSize })).length;
    return n / entries.length;
  } finally {
    c.close();
  }
}

async function profileMixed(ctx: Ctx): Promise<ProfileResult> {
  const m = b.profiles.mixed;
  const total = SMOKE ? b.smoke.rate : m.rate;
  const parts = m.shares.map((s) => {
    const rate = Math.max(1, Math.round(total * s.share));
    switch (s.name) {
      case 'query':
        return { name: 'mixed:query', method: 'QueryInformation' as const, agency: b.profiles.query.agency, data: ctx.ds.files.query, rate };
      case 'issue':
        return { name: 'mixed:issue', method: 'IssueCode' as const, agency: b.profiles.issue.agency, data: ctx.ds.files.issue, rate };
      case 'records':
        return { name: 'mixed:records', method: 'ListAccessRecords' as const, agency: b.profiles.records.agency, data: ctx.ds.files.records, rate };
      case 'denied':
        // The baselines check nothing, so they answer a denied query like any other.
        return { name: 'mixed:denied', method: 'QueryInformation' as const, agency: b.profiles.query.agency, data: ctx.ds.files.denied, rate, expect: ctx.t.kind === 'gateway' ? m.denied.expect : 'OK' };
    }
  });
  const cpu = measuredCpu(ctx, timing().warmupSeconds);
  const runs = await Promise.all(parts.map((p) => unary(ctx, { ...p, connections: 1, workers: 4, cpu: false })));
  const mixedCpu = perCall(cpu.stop(), runs.reduce((n, r) => n + r.count, 0)).cpuUsPerCall;
  const violations: string[] = [];
  const problems: string[] = [];
  runs.forEach((s, i) => {
    const j = judge(ctx, s, parts[i]!.method, parts[i]!.name);
    violations.push(...j.violations);
    problems.push(...j.problems);
  });
  return { target: ctx.t.name, profile: 'mixed', runs, ...(mixedCpu ? { cpuUsPerCall: mixedCpu } : {}), violations, problems };
}

async function profileBulk(ctx: Ctx): Promise<ProfileResult> {
  if (BULK_CODES !== undefined) return profileBulkTotal(ctx, BULK_CODES);
  const p = b.profiles.bulk;
  const seconds = SMOKE ? b.smoke.bulkSeconds : p.seconds;
  const problems: string[] = [];
  const violations: string[] = [];
  const g = await runGhz({
    name: `${ctx.t.name}:bulk`,
    call: CALL.IssueCodes,
    address: ctx.run.server.address,
    tls: tls(ctx, p.agency),
    protoset: ctx.ds.protoset,
    dataFile: ctx.ds.files.bulk,
    warmupSeconds: 0,
    measureSeconds: seconds,
    connections: 1,
    workers: p.streams,
    timeoutSeconds: Math.max(b.load.timeoutSeconds, 60),
    expect: 'OK',
    outFile: join(OUT_DIR, `${ctx.t.name}-bulk.json`),
    ghz: ctx.ghz,
    keepReport: !!args.keep,
  });
  const okStreams = g.statusCodeDistribution.OK ?? 0;
  const ghzFigure = {
    codesPerSecond: g.totalSeconds > 0 ? Math.round((okStreams * ctx.ds.bulkNumbersPerStream) / g.totalSeconds) : 0,
    streams: p.streams,
    numbersPerStream: ctx.ds.bulkNumbersPerStream,
    checksRatio: g.checksRatio,
    ...(g.problem ? { problem: g.problem } : {}),
  };
  if (g.problem) problems.push(`${ctx.t.name} bulk (ghz): ${g.problem}`);
  if (g.count === 0) problems.push(`${ctx.t.name} bulk (ghz): no stream completed`);
  else if (g.checksRatio < 1) problems.push(`${ctx.t.name} bulk (ghz): checks ${(g.checksRatio * 100).toFixed(2)}% (${JSON.stringify(g.statusCodeDistribution)})`);
  const w = cpuWindow(pidsOf(ctx.run));
  w.start();
  const node = await nodeBulk(ctx, 'measure', p.agency, seconds);
  const bulkCpu = w.stop();
  if ('error' in node && typeof node.error === 'string' && !('codes' in node)) problems.push(`${ctx.t.name} bulk (Node): ${node.error}`);
  else {
    const r = node as BulkResult;
    if (r.failed > 0 || r.codes === 0) problems.push(`${ctx.t.name} bulk (Node): ${r.codes} codes, ${r.failed} failed${r.error ? `: ${r.error}` : ''}`);
    // The echo baseline answers every number with the same code, so only the gateway's codes are compared.
    if (ctx.t.kind === 'gateway' && r.mismatches > 0) problems.push(`${ctx.t.name} bulk (Node): ${r.mismatches} codes differ from the expected ones`);
  }
  const best = Math.max(ghzFigure.codesPerSecond, (node as BulkResult).codesPerSecond ?? 0);
  if (!SMOKE && ctx.t.kind === 'gateway' && best < b.budget.IssueCodes.minCodesPerSecond)
    violations.push(`${ctx.t.name} bulk: ${Math.round(best).toLocaleString('en-US')} codes/s < ${b.budget.IssueCodes.minCodesPerSecond.toLocaleString('en-US')} (best of ghz and the Node client)`);
  // CPU per code over the whole Node client run (its start-up and warm-up included: an upper bound).
  const codes = 'codes' in node ? (node as BulkResult).codes : 0;
  const cpuUsPerCode = codes > 0 && bulkCpu.target !== undefined ? Math.round((bulkCpu.target * 1e6 * 100) / codes) / 100 : undefined;
  return { target: ctx.t.name, profile: 'bulk', method: 'IssueCodes', bulk: { ghz: ghzFigure, ...('codes' in node ? { node: node as BulkResult } : {}), ...(cpuUsPerCode !== undefined ? { cpuUsPerCode } : {}) }, violations, problems };
}

/**
 * The bulk profile at population scale: `total` codes for distinct new persons, 4 streams of messages of
 * `batch`, timed by the Node client from its first answer to its last; CPU per code over the whole run.
 */
async function profileBulkTotal(ctx: Ctx, total: number): Promise<ProfileResult> {
  const p = b.profiles.bulk;
  const problems: string[] = [];
  const violations: string[] = [];
  const w = cpuWindow(pidsOf(ctx.run));
  w.start();
  const node = await nodeBulk(ctx, 'total', p.agency, total);
  const cpu = w.stop();
  if (!('codes' in node)) problems.push(`${ctx.t.name} bulk ${total}: ${node.error}`);
  else {
    if (node.failed > 0 || node.codes !== total) problems.push(`${ctx.t.name} bulk ${total}: ${node.codes} codes, ${node.failed} failed${node.error ? `: ${node.error}` : ''}`);
    if (node.mismatches > 0) problems.push(`${ctx.t.name} bulk ${total}: ${node.mismatches} answers without a 28-character code`);
    if (!SMOKE && ctx.t.kind === 'gateway' && node.codesPerSecond < b.budget.IssueCodes.minCodesPerSecond)
      violations.push(`${ctx.t.name} bulk ${total.toLocaleString('en-US')}: ${Math.round(node.codesPerSecond).toLocaleString('en-US')} codes/s < ${b.budget.IssueCodes.minCodesPerSecond.toLocaleString('en-US')}`);
  }
  const codes = 'codes' in node ? node.codes : 0;
  const cpuUsPerCode = codes > 0 && cpu.target !== undefined ? Math.round((cpu.target * 1e6 * 100) / codes) / 100 : undefined;
  return { target: ctx.t.name, profile: 'bulk', method: 'IssueCodes', bulk: { ...('codes' in node ? { node } : {}), ...(cpuUsPerCode !== undefined ? { cpuUsPerCode } : {}) }, violations, problems };
}

async function nodeBulk(ctx: Ctx, mode: 'measure' | 'seed' | 'total', agency: string, secondsOrTotal: number): Promise<BulkResult | { error: string }> {
  const p = b.profiles.bulk;
  const r = await runCommand(
    process.execPath,
    [
      '--import', 'tsx', join(BENCH_DIR, 'bulk-client.ts'), mode,
      '--address', ctx.run.server.address,
      '--pki', join(ctx.run.dataDir, 'pki'),
      '--agency', agency,
      ...(mode === 'total'
        ? ['--total', String(secondsOrTotal)]
        : ['--numbers', ctx.ds.files.numbers, '--codes', ctx.ds.files.codes(agency), '--seconds', String(secondsOrTotal)]),
      '--streams', String(p.streams),
      '--batch', String(p.batch),
    ],
    { cwd: ROOT, timeoutMs: (mode === 'seed' ? 300 : mode === 'total' ? Math.ceil(secondsOrTotal / 5_000) + 120 : secondsOrTotal + 120) * 1000 },
  );
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as BulkResult;
  } catch {
    return { error: `bulk client ${r.timedOut ? 'timed out' : `exited ${r.code}`}: ${r.stderr.trim().slice(-1500)}` };
  }
}

async function capacitySearch(ctx: Ctx, method: 'IssueCode' | 'QueryInformation'): Promise<ProfileResult> {
  const c = b.profiles.capacity;
  const budgetP99 = b.budget[method].p99Ms;
  const maxSteps = SMOKE ? b.smoke.capacity.maxSteps : c.maxSteps;
  const warm = SMOKE ? b.smoke.capacity.warmupSeconds : c.warmupSeconds;
  const measure = SMOKE ? b.smoke.capacity.measureSeconds : c.measureSeconds;
  const profile = method === 'IssueCode' ? b.profiles.issue : b.profiles.query;
  const data = method === 'IssueCode' ? ctx.ds.files.issue : ctx.ds.files.query;
  const steps: CapacityStep[] = [];
  const problems: string[] = [];
  const tryRate = async (rate: number): Promise<boolean> => {
    const s = await unary(ctx, { name: `capacity-${method}-${rate}`, method, agency: profile.agency, data, rate, warmupSeconds: warm, measureSeconds: measure });
    const why: string[] = [];
    if (s.problem) why.push(s.problem.slice(0, 200));
    if (s.checksRatio < b.budget.checksPassRatio) why.push(`checks ${(s.checksRatio * 100).toFixed(2)}%`);
    if (s.achievedRatio < b.budget.minAchievedRateRatio) why.push(`achieved ${(s.achievedRatio * 100).toFixed(1)}%`);
    if (!(s.p99Ms < budgetP99)) why.push(`p99 ${s.p99Ms} ms`);
    const ok = SMOKE ? !s.problem && s.checksRatio >= b.budget.checksPassRatio : why.length === 0;
    steps.push({ rate, ok, achievedRps: s.achievedRps, p99Ms: s.p99Ms, checksRatio: s.checksRatio, ...(s.cpuUsPerCall ? { cpuUsPerCall: s.cpuUsPerCall } : {}), ...(why.length ? { why: why.join('; ') } : {}) });
    say(`  ${ctx.t.name} capacity ${method} @ ${rate}/s: p99 ${s.p99Ms} ms, achieved ${s.achievedRps}/s, checks ${(s.checksRatio * 100).toFixed(1)}% → ${ok ? 'meets' : 'misses'}`);
    if (SMOKE && !ok) problems.push(`${ctx.t.name} capacity ${method} @ ${rate}/s: ${why.join('; ')}`);
    return ok;
  };
  let best = 0;
  let fail: number | null = null;
  let rate = SMOKE ? b.smoke.capacity.startRate : Math.max(1, Math.round(b.budget[method].rate * c.startRatioOfBudgetRate));
  // Grow geometrically until a step misses (or shrink until one meets), then bisect.
  while (steps.length < maxSteps && timeLeft() > 60) {
    const ok = await tryRate(rate);
    if (ok) {
      best = rate;
      if (fail !== null) break;
      const nextRate = Math.round(rate * c.factor);
      if (nextRate > c.maxRate) break;
      rate = nextRate;
    } else {
      fail = rate;
      if (best > 0) break;
      rate = Math.round(rate / c.factor);
      if (rate < 10) break;
    }
  }
  for (let k = 0; k < c.refineSteps && best > 0 && fail !== null && steps.length < maxSteps && timeLeft() > 60; k++) {
    const mid = Math.round((best + fail) / 2);
    if (mid <= best || mid >= fail) break;
    if (await tryRate(mid)) best = mid;
    else fail = mid;
  }
  return { target: ctx.t.name, profile: 'capacity', method, capacity: { method, rate: best, p99BudgetMs: budgetP99, steps, upperBound: fail }, violations: [], problems };
}

// ---------------------------------------------------------------------------------------------------------
// Seeding and content checks (gateways)

async function seed(ctx: Ctx): Promise<{ seed: NonNullable<TargetResult['seed']>; problems: string[] }> {
  const out: NonNullable<TargetResult['seed']> = [];
  const problems: string[] = [];
  for (const agency of ctx.ds.seededAgencies) {
    const r = await nodeBulk(ctx, 'seed', agency, 0);
    if (!('codes' in r)) {
      problems.push(`${ctx.t.name} seeding ${agency}: ${r.error}`);
      continue;
    }
    out.push({ agency, codes: r.codes, mismatches: r.mismatches, failed: r.failed, seconds: Math.round(r.seconds * 100) / 100 });
    if (r.codes !== ctx.ds.persons || r.mismatches || r.failed) problems.push(`${ctx.t.name} seeding ${agency}: ${r.codes}/${ctx.ds.persons} codes, ${r.mismatches} differ, ${r.failed} failed${r.error ? `: ${r.error}` : ''}`);
  }
  return { seed: out, problems };
}

/** A few answers checked by content, through the Node client: ghz only sees status codes. */
async function contentChecks(ctx: Ctx): Promise<NonNullable<TargetResult['contentChecks']>> {
  const problems: string[] = [];
  let passed = 0;
  const check = (ok: boolean, what: string) => (ok ? passed++ : problems.push(`${ctx.t.name}: ${what}`));
  const pkiDir = join(ctx.run.dataDir, 'pki');
  const client = (agency: string) => new AgencyClient({ address: ctx.run.server.address, agency, pkiDir });
  const numbers = readLines(ctx.ds.files.numbers).slice(0, 5);
  const issueAgency = b.profiles.issue.agency;
  const expected = readLines(ctx.ds.files.codes(issueAgency)).slice(0, 5);
  const issuer = client(issueAgency);
  const requester = client(b.profiles.query.agency);
  const discloser = client(b.profiles.records.agency);
  try {
    for (let i = 0; i < numbers.length; i++) {
      const r = await issuer.issueCode(numbers[i]!);
      check(r.code === expected[i] && r.recordId.length > 0, `IssueCode gave an unexpected code for sample ${i}`);
    }
    const queries = (JSON.parse(readFileSync(ctx.ds.files.query, 'utf8')) as { code: string; provider: string; procedure: string; item: string }[]).slice(0, b.profiles.query.grants.length * 2);
    for (const q of queries) {
      try {
        const r = await requester.queryInformation(q);
        const body = JSON.parse(Buffer.from(r.payload).toString('utf8')) as { agency?: string; item?: string };
        check(body.agency === q.provider && body.item === q.item && r.legalBasisRow.length > 0 && r.contentType === 'application/json', `QueryInformation ${q.provider}/${q.item}: unexpected answer`);
      } catch (e) {
        check(false, `QueryInformation ${q.provider}/${q.item}: ${(e as Error).message}`);
      }
    }
    const d = (JSON.parse(readFileSync(ctx.ds.files.denied, 'utf8')) as { code: string; provider: string; procedure: string; item: string }[])[0]!;
    try {
      await requester.queryInformation(d);
      check(false, 'a query with no legal basis was answered');
    } catch (e) {
      check((e as { code?: number }).code === grpcStatus.PERMISSION_DENIED, `a query with no legal basis ended with ${(e as Error).message}, not PERMISSION_DENIED`);
    }
    const rec = (JSON.parse(readFileSync(ctx.ds.files.records, 'utf8')) as { code: string }[])[0]!;
    const records = await discloser.listRecords({ code: rec.code, pageSize: b.profiles.records.pageSize });
    check(records.length > 0 && records.some((r) => r.outcome === Outcome.ISSUED), `ListAccessRecords of a seeded person: ${records.length} records, none of its issuance`);
  } catch (e) {
    problems.push(`${ctx.t.name}: content checks: ${(e as Error).message}`);
  } finally {
    issuer.close();
    requester.close();
    discloser.close();
  }
  return { passed, failed: problems.length, problems };
}

// ---------------------------------------------------------------------------------------------------------

function capacityMethodsFor(t: Target): ('IssueCode' | 'QueryInformation')[] {
  return b.profiles.capacity.methods.filter((m) => t.kind === 'gateway' || b.baselineFor[`capacity:${m}`] === t.name);
}

async function runTarget(t: Target, ds: Dataset, ghz: string, services: { postgres: string | null; redis: string | null }): Promise<TargetResult> {
  const enforced = !SMOKE && b.budget.enforcedOn.includes(t.name);
  const base = { name: t.name, title: t.title, kind: t.kind, enforced, profiles: [] as ProfileResult[] };
  const env = Object.values(t.env ?? {});
  if (env.includes('$PG') && !services.postgres) return { ...base, status: 'not run', note: `PostgreSQL not reachable at ${PG_URL}` };
  if (env.includes('$REDIS') && !services.redis) return { ...base, status: 'not run', note: `Redis not reachable at ${REDIS_URL}` };
  say(`${t.name}: starting (${t.title})`);
  let run: Running;
  try {
    run = await startTarget(t, ds);
  } catch (e) {
    const msg = (e as Error).message;
    if (t.env?.LINKGW_ENGINE && /LINKGW_ENGINE/.test(msg)) return { ...base, status: 'not run', note: `LINKGW_ENGINE=${t.env.LINKGW_ENGINE} not accepted by this build` };
    return { ...base, status: 'failed', note: msg.split('\n')[0]!, profiles: [{ target: t.name, profile: 'issue', violations: [], problems: [`${t.name}: did not start: ${msg}`] }] };
  }
  const ctx: Ctx = { t, ds, run, ghz };
  const result: { -readonly [K in keyof TargetResult]: TargetResult[K] } = { ...base, status: 'ran' };
  try {
    const engine = typeof run.server.ready.engine === 'string' ? run.server.ready.engine : undefined;
    if (engine) result.engine = engine;
    if (typeof run.server.ready.records === 'string') result.records = run.server.ready.records;
    say(`${t.name}: serving on ${run.server.address}${engine ? ` (engine ${engine}, records ${result.records})` : ''}`);
    const wantEngine = t.env?.LINKGW_ENGINE;
    if (wantEngine && engine !== wantEngine) {
      // Give the gateway a moment to install its signal handlers before it is stopped.
      await new Promise((r) => setTimeout(r, 500));
      result.status = 'not run';
      result.note = `LINKGW_ENGINE=${wantEngine} not in effect yet (the gateway served with engine ${engine ?? 'unknown'})`;
      return result;
    }
    const pre: string[] = [];
    if (t.kind === 'gateway') {
      const s = await seed(ctx);
      result.seed = s.seed;
      pre.push(...s.problems);
      say(`${t.name}: seeded ${s.seed.map((x) => `${x.codes} ${x.agency} codes in ${x.seconds} s`).join(', ')}${s.problems.length ? ` — ${s.problems.join('; ')}` : ''}`);
      result.contentChecks = await contentChecks(ctx);
      pre.push(...result.contentChecks.problems);
      say(`${t.name}: content checks ${result.contentChecks.passed} passed, ${result.contentChecks.failed} failed`);
    }
    if (pre.length) result.profiles.push({ target: t.name, profile: 'issue', method: 'setup', violations: [], problems: pre });
    // --profiles runs them in the order given (bulk,records: the lookups after the bulk run).
    for (const profile of PROFILES ? PROFILES.filter((p) => t.profiles.includes(p)) : t.profiles) {
      if (timeLeft() < 30) {
        result.profiles.push({ target: t.name, profile, violations: [], problems: [`${t.name} ${profile}: skipped, the run's time limit (${RUN_LIMIT_S} s) was reached`] });
        continue;
      }
      let rs: ProfileResult[];
      switch (profile) {
        case 'issue':
        case 'query':
        case 'records':
          rs = [await profileUnary(ctx, profile)];
          break;
        case 'mixed':
          rs = [await profileMixed(ctx)];
          break;
        case 'bulk':
          rs = [await profileBulk(ctx)];
          break;
        case 'capacity': {
          rs = [];
          for (const m of capacityMethodsFor(t)) rs.push(await capacitySearch(ctx, m));
          break;
        }
      }
      for (const r of rs) {
        result.profiles.push(r);
        say(`${t.name}: ${describe(r)}`);
      }
    }
  } finally {
    const code = await run.server.stop();
    await run.providers?.stop();
    result.exitCode = code;
    if (t.kind === 'gateway' && result.status === 'ran' && code !== 0) result.profiles.push({ target: t.name, profile: 'issue', method: 'shutdown', violations: [], problems: [`${t.name}: exited with ${code} on SIGTERM`] });
    if (run.pgSchema) await dropSchema(run.pgSchema);
    if (!args.keep) rmSync(run.dataDir, { recursive: true, force: true });
  }
  return result;
}

function describe(r: ProfileResult): string {
  const flag = r.problems.length ? ' ✗ CHECKS' : r.violations.length ? ' ✗ budget' : '';
  if (r.capacity) return `capacity ${r.capacity.method}: ${r.capacity.rate}/s${flag}`;
  if (r.bulk) return `bulk: ghz ${r.bulk.ghz?.codesPerSecond ?? '–'} codes/s, Node ${Math.round(r.bulk.node?.codesPerSecond ?? 0)} codes/s${r.bulk.cpuUsPerCode !== undefined ? ` (${r.bulk.cpuUsPerCode} CPU-µs/code)` : ''}${flag}`;
  const cpu = (c: Record<string, number> | undefined) => (c ? `, CPU ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(' + ')} µs/call` : '');
  return (r.runs ?? []).map((s) => `${s.name.split(':').slice(1).join(':')}: p99 ${s.p99Ms} ms, p50 ${s.p50Ms} ms, ${s.achievedRps}/${s.targetRps}/s, checks ${(s.checksRatio * 100).toFixed(2)}%${cpu(s.cpuUsPerCall)}`).join('; ') + cpu(r.cpuUsPerCall) + flag;
}

async function main(): Promise<number> {
  installCleanup();
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)');
  const tool = await findGhz();
  say(`ghz: ${tool.path} (${tool.version}, ${tool.source})`);
  let targets = b.targets;
  if (ONLY) {
    const unknown = ONLY.filter((n) => !targets.some((t) => t.name === n));
    if (unknown.length) throw new Error(`unknown target(s): ${unknown.join(', ')}; known: ${targets.map((t) => t.name).join(', ')}`);
    targets = targets.filter((t) => ONLY.includes(t.name));
  }
  const needsPg = targets.some((t) => Object.values(t.env ?? {}).includes('$PG'));
  const needsRedis = targets.some((t) => Object.values(t.env ?? {}).includes('$REDIS'));
  const [postgres, redis] = await Promise.all([needsPg ? probePostgres() : Promise.resolve(null), needsRedis ? probeRedis() : Promise.resolve(null)]);
  const m = await machine(tool, postgres, redis);
  rmSync(RUN_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const persons = SMOKE ? b.smoke.persons : b.population.persons;
  say(`seeding a population of ${persons.toLocaleString('en-US')} persons`);
  const ds = await buildDataset(b, join(RUN_DIR, 'data'), persons);
  say(`data files in ${ds.dir} (known to providers: ${JSON.stringify(ds.enrolled)})`);

  const results: TargetResult[] = [];
  for (const t of targets) {
    if (timeLeft() < 30) {
      results.push({ name: t.name, title: t.title, kind: t.kind, status: 'failed', note: 'not started: time limit', enforced: false, profiles: [{ target: t.name, profile: 'issue', violations: [], problems: [`${t.name}: not started, the run's time limit was reached`] }] });
      continue;
    }
    results.push(await runTarget(t, ds, tool.path, { postgres, redis }));
  }
  const violations: string[] = [];
  const problems: string[] = [];
  const misses: string[] = [];
  for (const r of results) {
    for (const p of r.profiles) {
      problems.push(...p.problems);
      (r.enforced ? violations : misses).push(...p.violations);
    }
    if (r.status === 'not run') say(`${r.name}: not run: ${r.note}`);
  }
  if (!SMOKE && !ONLY && !results.some((r) => r.enforced && r.status === 'ran')) problems.push('no enforced target ran');
  const summary: RunSummary = {
    mode: MODE,
    machine: { ...m, loadAverageEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
    persons,
    enrolled: ds.enrolled,
    seconds: Math.round((Date.now() - t0) / 1000),
    targets: results,
    violations,
    problems,
    passed: violations.length === 0 && problems.length === 0,
  };
  let files: string[];
  if (MODE === 'full') {
    files = writeSummaries(RESULTS_DIR, summary, 'bench-');
    writeBenchmarksMd(join(ROOT, 'BENCHMARKS.md'), summary, b);
    files.push(join(ROOT, 'BENCHMARKS.md'));
  } else {
    files = writeSummaries(TMP_DIR, summary, `${MODE === 'smoke' ? 'smoke' : 'only'}-`);
  }
  say(`wrote ${files.map((f) => f.replace(ROOT + '/', '')).join(', ')}`);
  for (const x of misses) say(`outside the budget (not enforced on this target): ${x}`);
  for (const x of violations) say(`BUDGET BROKEN: ${x}`);
  for (const x of problems) say(`CHECK FAILED: ${x}`);
  say(summary.passed ? `${MODE} run passed` : `${MODE} run FAILED (${violations.length} budget, ${problems.length} checks)`);
  return summary.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(2);
  },
);
