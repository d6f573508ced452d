/**
 * A/B runs of gateway variants: the same profile against each variant in turn, round after round, so that the
 * machine's drift falls on every variant alike. A variant is a label and its Node flags and environment:
 *
 *   npx tsx bench/ab.ts --method QueryInformation --rate 500 --seconds 20 --rounds 4 \
 *       --variant "node-default=" --variant "semi4=--max-semi-space-size=4" [--out bench/results/ab-gc.json]
 *
 * Tokens of a variant that start with `--` are the Node flags of the gateway process (only those: a variant
 * with none runs Node's defaults, not bench/budget.json `nodeFlags`); `NAME=value` tokens are its environment
 * (over bench/budget.json `gatewayEnv`); `@DIR` runs the gateway built in DIR instead of this tree's `dist/`
 * (A/B of a code change: build the old commit into a directory of its own, e.g. with `git worktree`, and
 * name its `dist`). Each run starts a fresh
 * gateway (SQLite records, fresh data directory), issues the welfare office's codes for a seeded population
 * through it, warms up, measures with ghz at a constant arrival rate, and stops it. The providing agencies run
 * in their own process (bench/baseline/provider-server.ts, as in `npm run bench`; `--providers in-process` for
 * the gateway's embedded simulated agencies instead). CPU-µs per call of the gateway process and of the
 * provider process come from /proc/PID/stat (all threads) over the measured window. Prints one line per run
 * and each variant's median and range of CPU per call, p50 and p99; writes the runs as JSON when --out is given.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, loadBudget, ROOT, TMP_DIR } from './budget.js';
import { findGhz, runGhz } from './ghz.js';
import { cpuWindow, installCleanup, runCommand, startServer, type Server } from './procs.js';
import { providerAddresses, registryFor, startProviders } from './providers.js';
import { buildDataset, freshDataDir } from './seed.js';

const { values: args } = parseArgs({
  options: {
    method: { type: 'string', default: 'QueryInformation' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    persons: { type: 'string', default: '20000' },
    providers: { type: 'string', default: 'process' },
    variant: { type: 'string', multiple: true, default: [] },
    out: { type: 'string' },
  },
});

const METHODS = {
  IssueCode: { call: 'linkage.v1.LinkageGateway.IssueCode', data: 'issue', agency: 'welfare' },
  QueryInformation: { call: 'linkage.v1.LinkageGateway.QueryInformation', data: 'query', agency: 'welfare' },
  ListAccessRecords: { call: 'linkage.v1.AccessRecords.ListAccessRecords', data: 'records', agency: 'disclosure' },
} as const;

interface Variant {
  readonly label: string;
  readonly flags: string[];
  readonly env: Record<string, string>;
  /** The gateway's build: `dist/` of this tree unless the variant names another (`@DIR`). */
  readonly dist: string;
}

function parseVariant(s: string): Variant {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new Error(`--variant "label=flags and NAME=value tokens", not "${s}"`);
  const label = s.slice(0, eq);
  const flags: string[] = [];
  const env: Record<string, string> = {};
  let dist = join(ROOT, 'dist');
  for (const tok of s.slice(eq + 1).split(/\s+/).filter(Boolean)) {
    if (tok.startsWith('@')) dist = resolve(tok.slice(1));
    else if (tok.startsWith('--')) flags.push(tok);
    else if (/^[A-Z_][A-Z0-9_]*=/.test(tok)) env[tok.slice(0, tok.indexOf('='))] = tok.slice(tok.indexOf('=') + 1);
    else throw new Error(`variant ${label}: "${tok}" is neither a --flag nor NAME=value`);
  }
  return { label, flags, env, dist };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  installCleanup();
  const b = loadBudget();
  const method = args.method as keyof typeof METHODS;
  const m = METHODS[method];
  if (!m) throw new Error(`--method: one of ${Object.keys(METHODS).join(', ')}`);
  const variants = (args.variant as string[]).map(parseVariant);
  if (variants.length < 1) throw new Error('name at least one --variant');
  const rate = Number(args.rate);
  const rounds = Number(args.rounds);
  const dir = join(TMP_DIR, 'ab');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const ds = await buildDataset(b, join(dir, 'data'), Number(args.persons));
  const ghz = await findGhz();
  const runs: { round: number; variant: string; p50Ms: number; p99Ms: number; achievedRps: number; checksRatio: number; cpuUs?: number; providerCpuUs?: number; problem?: string }[] = [];
  const ownProviders = args.providers !== 'in-process';

  for (let round = 1; round <= rounds; round++) {
    for (const v of variants) {
      const dataDir = freshDataDir(ds.templateDir, join(dir, `gw-${v.label}-${round}`));
      let providers: Server | undefined;
      const simulation: Record<string, string> = {};
      if (ownProviders) {
        providers = await startProviders({ name: `${v.label}-providers`, dataDir, env: process.env, logFile: join(dir, 'logs', `${v.label}-${round}-providers.log`), nodeFlags: b.nodeFlags });
        Object.assign(simulation, { LINKGW_SIMULATE: '0', LINKGW_AGENCIES: registryFor(dataDir, providerAddresses(providers)) });
      }
      const server = await startServer({
        name: v.label,
        command: process.execPath,
        args: [...v.flags, join(v.dist, 'cli', 'main.js'), 'serve'],
        env: { ...process.env, ...Object.fromEntries(Object.entries(b.gatewayEnv).filter(([k]) => !k.startsWith('$'))), ...simulation, ...v.env, LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0' },
        cwd: ROOT,
        logFile: join(dir, 'logs', `${v.label}-${round}.log`),
        readyMsg: 'gateway serving',
        timeoutMs: 60_000,
      });
      try {
        for (const agency of ['welfare', 'disclosure']) {
          const r = await runCommand(
            process.execPath,
            ['--import', 'tsx', join(BENCH_DIR, 'bulk-client.ts'), 'seed', '--address', server.address, '--pki', join(dataDir, 'pki'),
              '--agency', agency, '--numbers', ds.files.numbers, '--codes', ds.files.codes(agency)],
            { cwd: ROOT, timeoutMs: 300_000 },
          );
          if (r.code !== 0) throw new Error(`seeding ${agency} failed: ${r.stderr.slice(-500)}`);
        }
        const pki = join(dataDir, 'pki');
        const cpu = cpuWindow({ target: server.proc.pid, providers: providers?.proc.pid });
        const opened = setTimeout(() => cpu.start(), Number(args.warmup) * 1000);
        const s = await runGhz({
          name: `${v.label}-${round}`,
          call: m.call,
          address: server.address,
          tls: { ca: join(pki, 'ca.crt'), cert: join(pki, `${m.agency}.crt`), key: join(pki, `${m.agency}.key`), cname: 'localhost' },
          protoset: ds.protoset,
          dataFile: ds.files[m.data],
          rps: rate,
          warmupSeconds: Number(args.warmup),
          measureSeconds: Number(args.seconds),
          connections: b.load.connections,
          workers: b.load.workers,
          timeoutSeconds: b.load.timeoutSeconds,
          expect: 'OK',
          outFile: join(dir, `ghz-${v.label}-${round}.json`),
          ghz: ghz.path,
        });
        clearTimeout(opened);
        const used = cpu.stop();
        const us = (x: number | undefined) => (x !== undefined && s.count > 0 ? Math.round((x * 1e6) / s.count) : undefined);
        const cpuUs = us(used.target);
        const providerCpuUs = us(used.providers);
        runs.push({ round, variant: v.label, p50Ms: s.p50Ms, p99Ms: s.p99Ms, achievedRps: s.achievedRps, checksRatio: s.checksRatio, ...(cpuUs !== undefined ? { cpuUs } : {}), ...(providerCpuUs !== undefined ? { providerCpuUs } : {}), ...(s.problem ? { problem: s.problem } : {}) });
        process.stderr.write(`round ${round} ${v.label}: CPU ${cpuUs ?? '–'} µs/call (providers ${providerCpuUs ?? '–'}), p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, ${s.achievedRps.toFixed(1)}/s, checks ${(s.checksRatio * 100).toFixed(2)}%${s.problem ? `, ${s.problem}` : ''}\n`);
      } finally {
        await server.stop();
        await providers?.stop();
      }
    }
  }
  const summary = variants.map((v) => {
    const mine = runs.filter((r) => r.variant === v.label);
    const cpu = mine.map((r) => r.cpuUs).filter((x): x is number => x !== undefined);
    const pcpu = mine.map((r) => r.providerCpuUs).filter((x): x is number => x !== undefined);
    return {
      variant: v.label, flags: v.flags, env: v.env, runs: mine.length,
      medianCpuUs: cpu.length ? median(cpu) : null, cpuUs: cpu,
      medianProviderCpuUs: pcpu.length ? median(pcpu) : null,
      medianP50Ms: median(mine.map((r) => r.p50Ms)), medianP99Ms: median(mine.map((r) => r.p99Ms)), p99Ms: mine.map((r) => r.p99Ms),
    };
  });
  for (const s of summary)
    process.stdout.write(`${s.variant}: median CPU ${s.medianCpuUs ?? '–'} µs/call (runs ${s.cpuUs.join(', ')}; providers ${s.medianProviderCpuUs ?? '–'}), median p50 ${s.medianP50Ms} ms, median p99 ${s.medianP99Ms} ms (p99s ${s.p99Ms.join(', ')})\n`);
  if (args.out) {
    const out = {
      command: `npx tsx bench/ab.ts ${process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`,
      date: new Date().toISOString(),
      method,
      rate,
      seconds: Number(args.seconds),
      persons: Number(args.persons),
      summary,
      runs,
    };
    writeFileSync(args.out, `${JSON.stringify(out, null, 2)}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
