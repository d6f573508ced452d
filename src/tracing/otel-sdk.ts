/**
 * The OpenTelemetry SDK, started from the standard OTEL_* environment variables, and only when they ask for an
 * exporter: unlike the specification's default (`OTEL_TRACES_EXPORTER=otlp` to localhost), a gateway with none
 * of them set traces nothing and loads none of the SDK, so `npm start` needs no collector.
 *
 * Tracing is on when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`, or both), or when it is unset
 * and OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. OTEL_SDK_DISABLED=true and
 * OTEL_TRACES_EXPORTER=none keep it off. The OTLP protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
 * OTEL_EXPORTER_OTLP_PROTOCOL: `http/protobuf` (the default), `http/json` or `grpc`. The rest is read by the
 * SDK itself: endpoints, headers, timeouts, compression, TLS files (OTEL_EXPORTER_OTLP_*), the sampler
 * (OTEL_TRACES_SAMPLER, _ARG; default parentbased_always_on), batching (OTEL_BSP_*), limits, and the resource
 * (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES over service.name=linkgw).
 *
 * OTEL_PROPAGATORS is not read: the gateway speaks W3C Trace Context only, and never reads or forwards baggage
 * (one agency's baggage is no business of another's). A value these rules do not know stops the start, like an
 * invalid LINKGW_* setting (exit 78).
 */
import { diag, DiagLogLevel } from '@opentelemetry/api';
import type { Logger } from '../log/logger.js';
import { SettingsError } from '../config/settings.js';
import type { Tracing } from './call-trace.js';
import { survivesScrub } from './ids.js';
import { otelTracing } from './otel-tracing.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export interface TracingPlan {
  readonly exporters: readonly ('otlp' | 'console')[];
  readonly protocol: OtlpProtocol;
}

const EXPORTERS = ['otlp', 'console'] as const;
const PROTOCOLS: readonly OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

const value = (env: NodeJS.ProcessEnv, name: string) => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/** What the environment asks for: undefined when tracing stays off. Throws SettingsError on a value it does not know. */
export function tracingPlan(env: NodeJS.ProcessEnv): TracingPlan | undefined {
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const problems: string[] = [];
  const named = value(env, 'OTEL_TRACES_EXPORTER')
    ?.split(',')
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);
  let exporters: ('otlp' | 'console')[];
  if (named) {
    if (named.includes('none')) {
      if (named.length > 1) problems.push(`OTEL_TRACES_EXPORTER="${env.OTEL_TRACES_EXPORTER}": "none" goes alone`);
      exporters = [];
    } else {
      const unknown = named.filter((n) => !(EXPORTERS as readonly string[]).includes(n));
      if (unknown.length) problems.push(`OTEL_TRACES_EXPORTER="${env.OTEL_TRACES_EXPORTER}": linkgw exports traces with otlp or console (or none), not ${unknown.join(', ')}`);
      exporters = [...new Set(named.filter((n): n is 'otlp' | 'console' => (EXPORTERS as readonly string[]).includes(n)))];
    }
  } else {
    exporters = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') || value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ? ['otlp'] : [];
  }
  const protocolVar = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = (value(env, protocolVar) ?? 'http/protobuf') as OtlpProtocol;
  if (!PROTOCOLS.includes(protocol)) problems.push(`${protocolVar}="${env[protocolVar]}": one of ${PROTOCOLS.join(', ')}`);
  if (problems.length) throw new SettingsError(problems);
  return exporters.length ? { exporters, protocol } : undefined;
}

let diagInstalled = false;
/** The SDK reports failed exports through its global `diag` logger: send warnings and errors to the log, once per process. */
function installDiag(log: Logger): void {
  if (diagInstalled) return;
  diagInstalled = true;
  const say = (level: 'warn' | 'error') => (msg: string, ...args: unknown[]) => log[level]('tracing: ' + msg, args.length ? { detail: args.map((a) => (a instanceof Error ? a : String(a))) } : undefined);
  diag.setLogger({ error: say('error'), warn: say('warn'), info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
}

export interface TracingStart {
  readonly log: Logger;
  /** service.version and service.instance.id of the resource (OTEL_RESOURCE_ATTRIBUTES may override them). */
  readonly version: string;
  readonly instanceId: string;
}

/**
 * Starts the SDK as `plan` says (loading it only now), with a batch span processor per exporter. Spans go to
 * a tracer of this gateway's own provider: nothing is registered globally.
 */
export async function startTracing(plan: TracingPlan, o: TracingStart): Promise<Tracing> {
  const [sdk, res] = await Promise.all([import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/resources')]);
  installDiag(o.log);
  const exporters = await Promise.all(
    plan.exporters.map(async (e) => {
      if (e === 'console') return new sdk.ConsoleSpanExporter();
      if (plan.protocol === 'grpc') return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
      if (plan.protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    }),
  );
  const resource = res
    .defaultResource()
    .merge(res.resourceFromAttributes({ 'service.name': 'linkgw', 'service.version': o.version, 'service.instance.id': o.instanceId }))
    .merge(res.detectResources({ detectors: [res.envDetector] }));
  // Trace ids the gateway starts are logged: draw them so that the log scrub keeps them whole (ids.ts).
  const random = new sdk.RandomIdGenerator();
  const idGenerator = {
    generateTraceId: () => {
      for (;;) {
        const id = random.generateTraceId();
        if (survivesScrub(id)) return id;
      }
    },
    generateSpanId: () => random.generateSpanId(),
  };
  const provider = new sdk.BasicTracerProvider({ resource, idGenerator, spanProcessors: exporters.map((e) => new sdk.BatchSpanProcessor(e)) });
  o.log.info('tracing on', { exporters: plan.exporters, ...(plan.exporters.includes('otlp') ? { protocol: plan.protocol } : {}) });
  return otelTracing(provider.getTracer('linkgw', o.version), () => provider.shutdown());
}

/** Tracing as the environment asks: OpenTelemetry, or pass-through ids (untraced.ts) when it asks for nothing. */
export async function tracingFromEnvironment(env: NodeJS.ProcessEnv, o: TracingStart): Promise<Tracing | undefined> {
  const plan = tracingPlan(env);
  return plan ? startTracing(plan, o) : undefined;
}
