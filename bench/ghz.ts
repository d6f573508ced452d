/**
 * ghz, the load generator (Apache-2.0): found on PATH, else in .tools/bin, else built there with `go install`
 * at a pinned version when Go is installed (never a binary download). Runs one load profile and reduces its
 * JSON report to the figures the budget is checked against.
 *
 * Constant arrival rate: `--rps R --async` (the pacer issues R calls a second, each sent without waiting for
 * earlier ones; a k6 constant-arrival-rate scenario is the model). The connections are opened once, before the
 * first call, and kept (`--connections`). The first `warmup` seconds of calls are left out of the tally
 * (`--skipFirst`), and `--duration-stop wait` lets the calls in flight at the end finish and count.
 * ghz's pacer is not a strict open-loop model, so a run whose achieved rate is below the budget's ratio of the
 * target (98%) is counted as having dropped iterations.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ROOT } from './budget.js';
import { runCommand } from './procs.js';

export const GHZ_MODULE = 'github.com/bojand/ghz/cmd/ghz';
export const GHZ_VERSION = 'v0.120.0';
export const TOOLS_BIN = join(ROOT, '.tools', 'bin');

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const f = join(dir, name);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export interface Tool {
  readonly path: string;
  readonly version: string;
  readonly source: 'PATH' | '.tools/bin' | 'built';
}

/** ghz from PATH, or .tools/bin, or built into .tools/bin with Go; throws with what to do otherwise. */
export async function findGhz(opts: { build: boolean } = { build: true }): Promise<Tool> {
  let path = onPath('ghz');
  let source: Tool['source'] = 'PATH';
  if (!path && existsSync(join(TOOLS_BIN, 'ghz'))) {
    path = join(TOOLS_BIN, 'ghz');
    source = '.tools/bin';
  }
  if (!path) {
    const go = onPath('go');
    if (!go || !opts.build) {
      throw new Error(
        `ghz not found on PATH nor in .tools/bin, and ${go ? 'building is off' : 'Go is not installed'}. ` +
          `Install Go and run: GOBIN=$PWD/.tools/bin go install ${GHZ_MODULE}@${GHZ_VERSION}`,
      );
    }
    process.stderr.write(`bench: building ghz ${GHZ_VERSION} into .tools/bin with go install\n`);
    mkdirSync(TOOLS_BIN, { recursive: true });
    const r = await runCommand(go, ['install', `${GHZ_MODULE}@${GHZ_VERSION}`], { cwd: ROOT, env: { ...process.env, GOBIN: TOOLS_BIN }, timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`go install ${GHZ_MODULE}@${GHZ_VERSION} failed:\n${r.stderr}`);
    path = join(TOOLS_BIN, 'ghz');
    source = 'built';
  }
  const v = await runCommand(path, ['--version'], { cwd: ROOT, timeoutMs: 10_000 });
  let version = (v.stdout + v.stderr).trim() || 'unknown';
  if (version === 'dev' || version === 'unknown') {
    // Built with `go install`: no version stamped, but the module version is in the build info.
    const go = onPath('go');
    const m = go ? await runCommand(go, ['version', '-m', path], { cwd: ROOT, timeoutMs: 10_000 }) : undefined;
    const mod = m?.stdout.match(/^\s*mod\s+github\.com\/bojand\/ghz\s+(\S+)/m)?.[1];
    if (mod) version = mod;
  }
  return { path, version, source };
}

export interface Tls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly cname: string;
}

export interface GhzRun {
  readonly name: string;
  /** package.Service.Method */
  readonly call: string;
  readonly address: string;
  readonly tls: Tls;
  readonly protoset: string;
  readonly dataFile: string;
  /** Calls a second; undefined: as fast as the workers go (bulk). */
  readonly rps?: number;
  readonly warmupSeconds: number;
  readonly measureSeconds: number;
  readonly connections: number;
  readonly workers: number;
  readonly timeoutSeconds: number;
  /** The status every call should end with. */
  readonly expect: string;
  /** ghz's JSON report (one entry per call) is written here, and deleted once summarised unless kept. */
  readonly outFile: string;
  readonly keepReport?: boolean;
  readonly ghz: string;
}

export interface Latency {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface GhzSummary extends Latency {
  readonly name: string;
  readonly call: string;
  readonly targetRps: number | null;
  /** Calls tallied (after the warm-up). */
  readonly count: number;
  /** count / measured seconds. */
  readonly achievedRps: number;
  /** achievedRps / targetRps (1 without a target). */
  readonly achievedRatio: number;
  readonly expect: string;
  /** Calls that ended with the expected status / all calls tallied. */
  readonly checksRatio: number;
  readonly statusCodeDistribution: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly totalSeconds: number;
  readonly problem?: string;
  /**
   * CPU-µs per tallied call of each process measured (bench/run.ts: `target`, and `providers` when the target
   * calls the bench's provider process), from /proc/PID/stat (all threads) over the measured window.
   */
  readonly cpuUsPerCall?: Record<string, number>;
}

interface GhzReport {
  count: number;
  total: number;
  rps: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  details?: { latency: number; status: string; error: string; timestamp: string }[];
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

/** Runs ghz once and summarises its report. */
export async function runGhz(r: GhzRun): Promise<GhzSummary & { report: GhzReport }> {
  const seconds = r.warmupSeconds + r.measureSeconds;
  const skip = r.rps ? Math.round(r.rps * r.warmupSeconds) : 0;
  const args = [
    '--protoset', r.protoset,
    '--call', r.call,
    '--cacert', r.tls.ca, '--cert', r.tls.cert, '--key', r.tls.key, '--cname', r.tls.cname,
    '-D', r.dataFile,
    '--disable-template-functions', '--disable-template-data',
    '--connections', String(r.connections),
    '-c', String(r.workers),
    '-z', `${seconds}s`,
    '--duration-stop', 'wait',
    '-t', `${r.timeoutSeconds}s`,
    '--name', r.name,
    '-O', 'json', '-o', r.outFile,
  ];
  if (r.rps) args.push('--rps', String(r.rps), '--async');
  if (skip > 0) args.push('--skipFirst', String(skip));
  args.push(r.address);
  rmSync(r.outFile, { force: true });
  const res = await runCommand(r.ghz, args, { cwd: ROOT, timeoutMs: (seconds + r.timeoutSeconds + 60) * 1000 });
  const base = { name: r.name, call: r.call, targetRps: r.rps ?? null, expect: r.expect };
  if (!existsSync(r.outFile)) {
    const problem = `ghz ${res.timedOut ? 'timed out' : `exited ${res.code}`}: ${(res.stderr || res.stdout).trim().slice(0, 2000)}`;
    const empty = { count: 0, total: 0, rps: 0 };
    return { ...base, count: 0, achievedRps: 0, achievedRatio: 0, checksRatio: 0, statusCodeDistribution: {}, errors: {}, totalSeconds: 0, p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, maxMs: NaN, problem, report: empty };
  }
  const report = JSON.parse(readFileSync(r.outFile, 'utf8')) as GhzReport;
  if (!r.keepReport) rmSync(r.outFile, { force: true });
  const details = report.details ?? [];
  const lat = new Float64Array(details.length);
  let expected = 0;
  details.forEach((d, i) => {
    lat[i] = d.latency / 1e6;
    if (d.status === r.expect) expected++;
  });
  lat.sort();
  const count = report.count;
  const achievedRps = r.rps ? count / r.measureSeconds : count / (report.total / 1e9);
  const summary: GhzSummary = {
    ...base,
    count,
    achievedRps: round(achievedRps, 1),
    achievedRatio: r.rps ? round(achievedRps / r.rps, 4) : 1,
    checksRatio: count > 0 ? round(expected / details.length, 6) : 0,
    statusCodeDistribution: report.statusCodeDistribution ?? {},
    errors: report.errorDistribution ?? {},
    totalSeconds: round(report.total / 1e9, 3),
    p50Ms: round(percentile(lat, 50)),
    p90Ms: round(percentile(lat, 90)),
    p99Ms: round(percentile(lat, 99)),
    maxMs: round(lat.length ? lat[lat.length - 1]! : NaN),
    ...(res.code !== 0 ? { problem: `ghz exited ${res.code}: ${res.stderr.trim().slice(0, 500)}` } : {}),
  };
  return { ...summary, report };
}
