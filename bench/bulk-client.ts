/**
 * A Node streaming client for bulk issuance (IssueCodes): measures codes/s with protobuf-es encoding, so the
 * figure is not limited by the load tool's own (reflective, JSON-sourced) message encoding; and seeds a
 * gateway by issuing codes for the whole population, checking every code against the one computed offline.
 *
 *   node --import tsx bench/bulk-client.ts measure --address H:P --pki DIR --agency A --numbers F --codes F \
 *        [--seconds 8] [--warmup 1] [--streams 4] [--batch 1000] [--window 4]
 *   node --import tsx bench/bulk-client.ts seed    --address H:P --pki DIR --agency A --numbers F --codes F
 *   node --import tsx bench/bulk-client.ts total   --address H:P --pki DIR --agency A --total 10000000 \
 *        [--streams 4] [--batch 10000] [--window 4]
 *
 * `total` issues that many codes for distinct synthetic numbers made as it goes (never held all at once, not in
 * the seeded population, so each is a new person of the index); their codes are not compared (no expected
 * codes exist for them), only their statuses are checked.
 *
 * Prints one JSON line: { codes, seconds, codesPerSecond, mismatches, failed, streams, batch }.
 */
import { create } from '@bufbuild/protobuf';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AgencyClient } from '../src/cli/agency-client.js';
import { personalNumberCheckDigit } from '../src/core/personal-number.js';
import { IssueCodesRequestSchema, type IssueCodesResponse } from '../src/gen/linkage/v1/gateway_pb.js';

export interface BulkOptions {
  readonly address: string;
  readonly pkiDir: string;
  readonly agency: string;
  readonly numbers: readonly string[];
  /** The expected code of numbers[i] for `agency`. */
  readonly expected: readonly string[];
  readonly streams: number;
  readonly batch: number;
  /** Batches in flight per stream. */
  readonly window: number;
  /** Run for this long (measure); undefined: issue every number once (seed). */
  readonly seconds?: number;
  /** Issue this many codes for distinct synthetic numbers instead (`numbers` and `expected` unused). */
  readonly total?: number;
  /** Measure: run this long first without counting (connections, JIT). */
  readonly warmupSeconds?: number;
}

export interface BulkResult {
  readonly codes: number;
  readonly seconds: number;
  readonly codesPerSecond: number;
  /** Results whose code differs from the expected one. */
  readonly mismatches: number;
  /** Results with a non-zero status, and streams that failed. */
  readonly failed: number;
  readonly streams: number;
  readonly batch: number;
  readonly error?: string;
}

export async function runBulk(o: BulkOptions): Promise<BulkResult> {
  const n = o.numbers.length;
  const batches: { start: number; msg: ReturnType<typeof create<typeof IssueCodesRequestSchema>> }[] = [];
  for (let s = 0; o.total === undefined && (s + o.batch <= n || (o.seconds === undefined && s < n)); s += o.batch) {
    batches.push({ start: s, msg: create(IssueCodesRequestSchema, { personalNumbers: o.numbers.slice(s, Math.min(n, s + o.batch)) }) });
  }
  const clients = Array.from({ length: o.streams }, () => new AgencyClient({ address: o.address, agency: o.agency, pkiDir: o.pkiDir }));
  let codes = 0;
  let mismatches = 0;
  let failed = 0;
  let next = 0;
  let error: string | undefined;
  const warm = o.seconds !== undefined ? (o.warmupSeconds ?? 1) * 1000 : 0;
  const countFrom = Date.now() + warm;
  const started = process.hrtime.bigint() + BigInt(warm) * 1_000_000n;
  const deadline = o.seconds !== undefined ? countFrom + o.seconds * 1000 : Infinity;
  const take = (): (typeof batches)[number] | undefined => {
    if (o.total !== undefined) {
      const from = next++ * o.batch;
      return from < o.total ? { start: -1, msg: create(IssueCodesRequestSchema, { personalNumbers: syntheticBatch(from, Math.min(o.batch, o.total - from)) }) } : undefined;
    }
    if (o.seconds === undefined) return next < batches.length ? batches[next++] : undefined;
    if (Date.now() >= deadline) return undefined;
    return batches[next++ % batches.length];
  };
  let ended = process.hrtime.bigint();
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          // A total run lasts as long as the gateway needs: allow it down to 5,000 codes/s.
          const call = c.issueStream(o.total !== undefined ? Math.max(600_000, (o.total / 5_000) * 1000) : Math.max(60_000, (o.seconds ?? 0) * 1000 + 60_000));
          const sent: number[] = [];
          let closing = false;
          const pump = () => {
            while (!closing && sent.length < o.window) {
              const b = take();
              if (!b) {
                closing = true;
                if (sent.length === 0) call.end();
                return;
              }
              sent.push(b.start);
              call.write(b.msg);
            }
          };
          call.on('data', (r: IssueCodesResponse) => {
            const start = sent.shift()!;
            if (warm > 0 && Date.now() < countFrom) {
              for (const x of r.results) if (x.status !== 0) failed++;
              if (closing) {
                if (sent.length === 0) call.end();
              } else pump();
              return;
            }
            r.results.forEach((x, j) => {
              if (x.status !== 0) failed++;
              else {
                codes++;
                if (start >= 0 ? x.code !== o.expected[start + j] : x.code.length !== 28) mismatches++;
              }
            });
            ended = process.hrtime.bigint();
            if (closing) {
              if (sent.length === 0) call.end();
            } else pump();
          });
          call.on('error', (e: Error) => {
            failed++;
            error ??= e.message;
            resolve();
          });
          call.on('end', () => resolve());
          pump();
        }),
    ),
  );
  for (const c of clients) c.close();
  const seconds = Number(ended - started) / 1e9;
  return { codes, seconds, codesPerSecond: seconds > 0 ? codes / seconds : 0, mismatches, failed, streams: o.streams, batch: o.batch, ...(error ? { error } : {}) };
}

/**
 * `count` distinct valid personal numbers from index `from` of a walk over the 11-digit bases with a step
 * coprime to 10^11 (distinct for the first 10^11 / 7,919 > 12 million indexes), another walk than the seeded
 * population's.
 */
function syntheticBatch(from: number, count: number): string[] {
  const out = new Array<string>(count);
  for (let k = 0; k < count; k++) {
    const base = ((from + k) * 7_919 + 31_415_926_535) % 100_000_000_000;
    const first11 = base.toString().padStart(11, '0');
    out[k] = first11 + String(personalNumberCheckDigit(first11));
  }
  return out;
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      address: { type: 'string' },
      pki: { type: 'string' },
      agency: { type: 'string' },
      numbers: { type: 'string' },
      codes: { type: 'string' },
      seconds: { type: 'string' },
      streams: { type: 'string' },
      batch: { type: 'string' },
      window: { type: 'string' },
      warmup: { type: 'string' },
      total: { type: 'string' },
    },
  });
  const mode = positionals[0];
  const total = mode === 'total';
  if ((mode !== 'measure' && mode !== 'seed' && !total) || !values.address || !values.pki || !values.agency || (!total && (!values.numbers || !values.codes)) || (total && !(Number(values.total) > 0))) {
    process.stderr.write('usage: bulk-client.ts measure|seed --address H:P --pki DIR --agency A --numbers F --codes F [--seconds S] [--streams N] [--batch B] [--window W]\n       bulk-client.ts total --address H:P --pki DIR --agency A --total N [--streams N] [--batch B] [--window W]\n');
    process.exit(2);
  }
  const r = await runBulk({
    address: values.address,
    pkiDir: values.pki,
    agency: values.agency,
    numbers: total ? [] : lines(values.numbers!),
    expected: total ? [] : lines(values.codes!),
    ...(total ? { total: Number(values.total) } : {}),
    streams: Number(values.streams ?? 4),
    batch: Number(values.batch ?? 1000),
    window: Number(values.window ?? 4),
    ...(mode === 'measure' ? { seconds: Number(values.seconds ?? 8), warmupSeconds: Number(values.warmup ?? 1) } : {}),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e) => {
    process.stderr.write(`bulk-client: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
