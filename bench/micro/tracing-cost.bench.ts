/**
 * What tracing and the access log cost a QueryInformation: CPU-µs per call of the gateway process (all its
 * threads, simulated providers in-process, SQLite records), read from /proc/PID/stat around a fixed number of
 * calls at a fixed concurrency, for several gateway builds and settings, round after round so the machine's
 * drift falls on every variant alike.
 *
 *   npm run build && npx tsx bench/micro/tracing-cost.bench.ts \
 *     --variant "before=/tmp/linkgw-base/bin/linkgw.js" \
 *     --variant "after=bin/linkgw.js" \
 *     --variant "after-no-access-log=bin/linkgw.js LINKGW_ACCESS_LOG=off" \
 *     --variant "after-otlp=bin/linkgw.js OTEL_TRACES_EXPORTER=otlp" [--calls 6000] [--rounds 3]
 *
 * A variant is `label=BIN [NAME=value …]`. With OTEL_TRACES_EXPORTER set, spans go to a sink this script
 * serves on a loopback port (OTLP/HTTP, answered 200 and thrown away). The client runs in this process, on the
 * same two cores: compare variants within one run, not with other machines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { population } from '../../test/helpers/population.js';

const { values: args } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true, default: [] },
    calls: { type: 'string', default: '6000' },
    warmup: { type: 'string', default: '1500' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const CALLS = Number(args.calls);
const WARMUP = Number(args.warmup);
const CONCURRENCY = Number(args.concurrency);
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

interface Variant {
  readonly label: string;
  readonly bin: string;
  readonly env: Record<string, string>;
}

const variants: Variant[] = (args.variant as string[]).map((s) => {
  const eq = s.indexOf('=');
  const [bin, ...rest] = s.slice(eq + 1).trim().split(/\s+/);
  return { label: s.slice(0, eq), bin: resolve(bin!), env: Object.fromEntries(rest.map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)])) };
});
if (variants.length === 0) throw new Error('give at least one --variant label=BIN [NAME=value …]');

// An OTLP sink for the variants that export.
const sink = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = (sink.address() as { port: number }).port;

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

async function start(v: Variant, dataDir: string): Promise<{ child: ChildProcess; address: string }> {
  const env: Record<string, string> = { ...(process.env as Record<string, string>), LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0', LINKGW_RATE_LIMIT: 'default=100000/100000', ...v.env };
  if (v.env.OTEL_TRACES_EXPORTER) env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${sinkPort}`;
  const child = spawn(process.execPath, ['--max-semi-space-size=4', v.bin, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const address = await new Promise<string>((res, rej) => {
    const onData = (b: Buffer) => {
      text += b.toString();
      const m = /"msg":"gateway serving".*?"address":"([^"]+)"/.exec(text);
      if (m) {
        // Keep reading the access log, as a terminal or the journal would.
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        res(m[1]!);
      } else if (text.length > 1e6) text = text.slice(-10_000);
    };
    child.stderr!.on('data', onData);
    child.on('exit', (c) => rej(new Error(`${v.label} exited ${c}: ${text.slice(-2000)}`)));
  });
  return { child, address };
}

async function drive(client: AgencyClient, codes: string[], n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const code = codes[next++ % codes.length]!;
        await client.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }).catch(() => undefined);
      }
    }),
  );
}

async function measure(v: Variant): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'linkgw-tracing-cost-'));
  const { child, address } = await start(v, dataDir);
  const client = new AgencyClient({ address, agency: 'pension', pkiDir: join(dataDir, 'pki') });
  try {
    const codes: string[] = [];
    for (const n of population(200, 7)) codes.push((await client.issueCode(n)).code);
    await drive(client, codes, WARMUP);
    const t0 = cpuTicks(child.pid!);
    await drive(client, codes, CALLS);
    return ((cpuTicks(child.pid!) - t0) * TICK_US) / CALLS;
  } finally {
    client.close();
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(`${dataDir}-dev-ca`, { recursive: true, force: true });
  }
}

console.log(`node ${process.version}; ${CALLS} QueryInformation calls per run after ${WARMUP} warm-up, ${CONCURRENCY} in flight; CPU-µs per call of the gateway process`);
const results = new Map<string, number[]>(variants.map((v) => [v.label, []]));
for (let round = 1; round <= Number(args.rounds); round++) {
  for (const v of variants) {
    const us = await measure(v);
    results.get(v.label)!.push(us);
    console.log(`round ${round}  ${v.label.padEnd(24)} ${us.toFixed(0).padStart(6)} µs`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('\nmedian CPU-µs per QueryInformation:');
const base = median(results.get(variants[0]!.label)!);
for (const v of variants) {
  const m = median(results.get(v.label)!);
  console.log(`  ${v.label.padEnd(24)} ${m.toFixed(0).padStart(6)}  (${m >= base ? '+' : ''}${(m - base).toFixed(0)} vs ${variants[0]!.label})   runs: ${results.get(v.label)!.map((x) => x.toFixed(0)).join(', ')}`);
}
sink.close();
