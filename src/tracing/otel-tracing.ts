/**
 * Calls' traces as OpenTelemetry spans (when OTEL_* configures an exporter: otel-sdk.ts), over the API's
 * `Tracer`, so tests can hand it an SDK tracer with an in-memory exporter.
 *
 *   linkage.v1.LinkageGateway/QueryInformation   SERVER, child of the caller's traceparent (if valid)
 *   ├─ linkage.v1.InformationProvider/Provide    CLIENT, its context is the provider's traceparent
 *   └─ linkgw.record.commit                      INTERNAL, one per access record the call waits for
 *
 * The record writer commits records in batches; each call's `linkgw.record.commit` span is its own wait, from
 * handing the record over to its batch being durable (queueing behind the commit in progress included), so a
 * call's trace shows where its time went. Batches get no span of their own (docs/adr/0010-tracing.md).
 *
 * Context is passed explicitly (CallContext.trace → the ports), never through AsyncLocalStorage: no context
 * manager is installed, and nothing is registered globally (several gateways can run in one process).
 *
 * Attributes are agency ids, method names, status codes and record ids only. The request id is the caller's
 * input: it is scrubbed like a log string (src/log/logger.ts).
 */
import { createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { scrub } from '../log/logger.js';
import type { ProvideResult } from '../service/ports.js';
import type { CallTrace, IncomingTrace, ProviderCallSpan, RecordWaitSpan, ServerCallTrace, TracedRpc, Tracing } from './call-trace.js';
import { formatTraceparent, parseTraceparent, parseTracestate } from './w3c-trace-context.js';

/** Attribute names, in one place (OpenTelemetry's RPC conventions, and the gateway's own under `linkgw.`). */
export const ATTR = {
  rpcSystem: 'rpc.system',
  rpcService: 'rpc.service',
  rpcMethod: 'rpc.method',
  grpcStatus: 'rpc.grpc.status_code',
  agency: 'linkgw.agency',
  provider: 'linkgw.provider',
  outcome: 'linkgw.provider.outcome',
  recordId: 'linkgw.record_id',
  records: 'linkgw.records',
  requestId: 'linkgw.request_id',
} as const;

/** The codes a server span marks as errors (OpenTelemetry's gRPC conventions): the server's fault, not the caller's. */
const SERVER_FAULTS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]); // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
const PROVIDER = { service: 'linkage.v1.InformationProvider', method: 'Provide' } as const;

/** What a call's spans share: the tracer, and the call whose records they note. */
interface Root {
  readonly tracer: Tracer;
  noteRecord(recordId: string): void;
}

/** A span as the parent of outgoing work: its W3C headers and its children. */
class Scope implements CallTrace {
  #context: Context | undefined;

  constructor(
    protected readonly root: Root,
    protected readonly span: Span,
  ) {}

  get traceId(): string {
    return this.span.spanContext().traceId;
  }

  get traceparent(): string {
    const c = this.span.spanContext();
    return formatTraceparent(c.traceId, c.spanId, c.traceFlags);
  }

  get tracestate(): string | undefined {
    return this.span.spanContext().traceState?.serialize() || undefined;
  }

  /** The context whose active span is this one, as the parent of children. */
  protected get context(): Context {
    return (this.#context ??= trace.setSpan(ROOT_CONTEXT, this.span));
  }

  startProviderCall(provider: string): ProviderCallSpan {
    // Under a span that is not recorded (sampled out), no child is made: the provider's parent is this span.
    if (!this.span.isRecording()) return new ProviderCall(this.root, this.span, false);
    const span = this.root.tracer.startSpan(
      `${PROVIDER.service}/${PROVIDER.method}`,
      { kind: SpanKind.CLIENT, attributes: { [ATTR.rpcSystem]: 'grpc', [ATTR.rpcService]: PROVIDER.service, [ATTR.rpcMethod]: PROVIDER.method, [ATTR.provider]: provider } },
      this.context,
    );
    return new ProviderCall(this.root, span, true);
  }

  startRecordWait(recordId: string): RecordWaitSpan | undefined {
    this.root.noteRecord(recordId);
    if (!this.span.isRecording()) return undefined;
    const span = this.root.tracer.startSpan('linkgw.record.commit', { kind: SpanKind.INTERNAL, attributes: { [ATTR.recordId]: recordId } }, this.context);
    return {
      end(failed) {
        if (failed) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }
}

class ProviderCall extends Scope implements ProviderCallSpan {
  constructor(
    root: Root,
    span: Span,
    private readonly own: boolean,
  ) {
    super(root, span);
  }

  end(result: ProvideResult): void {
    if (!this.own) return;
    const code = result.kind === 'provided' ? 0 : result.kind === 'not-found' ? 5 : result.grpcStatus;
    this.span.setAttribute(ATTR.grpcStatus, code);
    this.span.setAttribute(ATTR.outcome, result.kind === 'failed' ? result.code.toLowerCase() : result.kind);
    if (result.kind === 'failed') this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }
}

/** The call's own span; its children go through a Scope over it, which notes records back here. */
class ServerCall implements ServerCallTrace, Root {
  recordId: string | undefined;
  records = 0;
  readonly #span: Span;
  readonly #scope: Scope;

  constructor(
    readonly tracer: Tracer,
    readonly requestId: string,
    rpc: TracedRpc,
    parent: Context,
  ) {
    this.#span = tracer.startSpan(
      `${rpc.service}/${rpc.method}`,
      { kind: SpanKind.SERVER, attributes: { [ATTR.rpcSystem]: 'grpc', [ATTR.rpcService]: rpc.service, [ATTR.rpcMethod]: rpc.method, [ATTR.requestId]: scrub(requestId) } },
      parent,
    );
    this.#scope = new Scope(this, this.#span);
  }

  get traceId(): string {
    return this.#scope.traceId;
  }

  get traceparent(): string {
    return this.#scope.traceparent;
  }

  get tracestate(): string | undefined {
    return this.#scope.tracestate;
  }

  startProviderCall(provider: string): ProviderCallSpan {
    return this.#scope.startProviderCall(provider);
  }

  startRecordWait(recordId: string): RecordWaitSpan | undefined {
    return this.#scope.startRecordWait(recordId);
  }

  noteRecord(recordId: string): void {
    if (this.records++ === 0) this.recordId = recordId;
  }

  end(code: number, agency: string | undefined): void {
    const s = this.#span;
    if (!s.isRecording()) return;
    s.setAttribute(ATTR.grpcStatus, code);
    if (agency !== undefined) s.setAttribute(ATTR.agency, agency);
    if (this.recordId !== undefined) s.setAttribute(ATTR.recordId, this.recordId);
    if (this.records > 1) s.setAttribute(ATTR.records, this.records);
    if (SERVER_FAULTS.has(code)) s.setStatus({ code: SpanStatusCode.ERROR });
    s.end();
  }
}

/** The caller's span as the parent context, when its traceparent is valid. */
export function parentContext(incoming: IncomingTrace): Context {
  const p = incoming.traceparent.length ? parseTraceparent(incoming.traceparent) : undefined;
  if (!p) return ROOT_CONTEXT;
  const ts = incoming.tracestate.length ? parseTracestate(incoming.tracestate) : undefined;
  const sc: SpanContext = { traceId: p.traceId, spanId: p.parentId, traceFlags: p.flags, isRemote: true, ...(ts ? { traceState: createTraceState(ts) } : {}) };
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}

export function otelTracing(tracer: Tracer, close: () => Promise<void> = async () => undefined): Tracing {
  return {
    startCall: (rpc, incoming, requestId) => new ServerCall(tracer, requestId, rpc, parentContext(incoming)),
    close,
  };
}
