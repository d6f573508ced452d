/**
 * The per-call work tracing adds, alone, without the noise of a whole gateway on a shared machine: a call is
 * opened through the pipeline's steps and ended, its provider call's trace metadata built and its record wait
 * timed, in a loop, with and without the trace step. CPU from process.cpuUsage() over many calls.
 *
 *   baseline        observe, identify, context (the pipeline before tracing)
 *   untraced        + the trace step with tracing off, access log off
 *   untraced+log    + the access line, formatted and written to a stream that drops it (the write syscall of
 *                     a real stderr is not counted here; the end-to-end bench counts it)
 *   otel            + OpenTelemetry spans (SDK, batch processor, an exporter that drops them), access log on
 *
 *   npx tsx bench/micro/trace-step.bench.ts [--calls 200000]
 */
import { Metadata } from '@grpc/grpc-js';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { parseAgencyRegistry } from '../../src/core/agency-registry.js';
import { CallPipeline, type ServerCallLike } from '../../src/grpc/call-pipeline.js';
import { contextStep, identifyStep, observeStep } from '../../src/grpc/call-steps.js';
import { INSECURE_AGENCY_HEADER } from '../../src/grpc/identity.js';
import { traceStep } from '../../src/grpc/trace-step.js';
import { createLogger } from '../../src/log/logger.js';
import type { Tracing } from '../../src/tracing/call-trace.js';
import { otelTracing } from '../../src/tracing/otel-tracing.js';
import { traceMetadata } from '../../src/tracing/trace-metadata.js';
import { tracedRecords } from '../../src/tracing/traced-records.js';
import { untraced } from '../../src/tracing/untraced.js';

const { values: args } = parseArgs({ options: { calls: { type: 'string', default: '200000' } } });
const N = Number(args.calls);

const registry = parseAgencyRegistry(JSON.parse(readFileSync(new URL('../../config/agencies.json', import.meta.url), 'utf8')));
const drop = new Writable({ write: (_c, _e, cb) => cb() });
const log = createLogger({ level: 'info', stream: drop });
const noop = { append: () => Promise.resolve() };
const dropExporter: SpanExporter = { export: (_s, cb) => cb({ code: 0 }), shutdown: async () => undefined };
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropExporter, { maxQueueSize: 1 << 16, maxExportBatchSize: 4096, scheduledDelayMillis: 50 })] });

function call(): ServerCallLike {
  const md = new Metadata();
  md.set(INSECURE_AGENCY_HEADER, 'pension');
  return { metadata: md, getAuthContext: () => null, getDeadline: () => Date.now() + 5000, on: () => undefined, removeListener: () => undefined };
}

const rpc = { service: 'linkage.v1.LinkageGateway', method: 'QueryInformation', type: 'unary' } as const;
const base = [observeStep(log), identifyStep(() => registry, true), contextStep(log)];
const variants: [string, CallPipeline, boolean][] = [
  ['baseline', new CallPipeline(base), false],
  ['untraced', new CallPipeline([base[0]!, traceStep(untraced, log, 'off'), ...base.slice(1)]), true],
  ['untraced+log', new CallPipeline([base[0]!, traceStep(untraced, log, 'info'), ...base.slice(1)]), true],
  ['otel', new CallPipeline([base[0]!, traceStep(otelTracing(provider.getTracer('bench')) as Tracing, log, 'info'), ...base.slice(1)]), true],
];
const records = tracedRecords(noop);
const draft = { recordId: '0123456789ABCDEFGHJKMNPQ' } as never;

async function run(p: CallPipeline, traced: boolean, n: number): Promise<number> {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const scope = await p.open(rpc, call());
    const trace = scope.ctx.trace;
    if (traced && trace) {
      // What the service does around the provider call and the record, as in gateway-service.ts.
      const span = trace.startProviderCall('tax');
      traceMetadata(span);
      span.end({ kind: 'provided', payload: new Uint8Array(), contentType: 'x' });
      await records.append(draft, { trace });
    } else await noop.append();
    scope.end({ code: 0 });
  }
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / n;
}

console.log(`node ${process.version}; ${N} calls per variant, CPU-µs per call (median of 5)`);
for (const [label, p, traced] of variants) await run(p, traced, Math.min(N, 20_000)); // warm up
for (const [label, p, traced] of variants) {
  const xs: number[] = [];
  for (let r = 0; r < 5; r++) xs.push(await run(p, traced, N / 5));
  xs.sort((a, b) => a - b);
  console.log(`  ${label.padEnd(14)} ${xs[2]!.toFixed(2).padStart(7)} µs   (${xs.map((x) => x.toFixed(2)).join(', ')})`);
}
await provider.shutdown();
