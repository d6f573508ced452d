/**
 * A call's trace as the code serving it sees it, with or without OpenTelemetry (docs/tracing.md):
 *
 *   - the ids that every log line of the call carries (its request id and trace id);
 *   - the W3C headers an outgoing call made on its behalf carries (`traceparent`, `tracestate`);
 *   - child spans for the provider call and for the wait for the access record.
 *
 * What goes into a span is typed, not free text: agency ids, record ids, status codes. There is no way to hand
 * this interface a personal number, a code or a subject key. Services see it through `CallContext.trace` and
 * pass it to their ports; they never import OpenTelemetry.
 */
import type { ProvideResult } from '../service/ports.js';

/** The W3C trace context an outgoing call carries; undefined: send none. */
export interface TraceHeaders {
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
}

export interface CallTrace extends TraceHeaders {
  /** 32 lower-case hex digits: the caller's trace, or one the gateway started. */
  readonly traceId: string;
  /** Starts the span of one provider call; its headers are the ones that call sends. */
  startProviderCall(provider: string): ProviderCallSpan;
  /**
   * Notes the record as this call's and starts the span of waiting for it to be durable; undefined when
   * nothing is recorded (tracing off, or sampled out), so the wait costs nothing to time.
   */
  startRecordWait(recordId: string): RecordWaitSpan | undefined;
}

export interface ProviderCallSpan extends CallTrace {
  end(result: ProvideResult): void;
}

export interface RecordWaitSpan {
  /** `failed`: the record did not become durable (the call fails UNAVAILABLE). */
  end(failed?: boolean): void;
}

/** The trace of a call the gateway serves, as the call pipeline holds it. */
export interface ServerCallTrace extends CallTrace {
  /** The caller's `x-request-id`, or one the gateway assigned. */
  readonly requestId: string;
  /** The first access record the call wrote, and how many it wrote (a bulk stream writes one per message). */
  readonly recordId: string | undefined;
  readonly records: number;
  /** Ends the call's span with its status code and, once identified, the calling agency. */
  end(code: number, agency: string | undefined): void;
}

/** The caller's trace context, as its metadata carried it (validated: see w3c-trace-context.ts). */
export interface IncomingTrace {
  readonly traceparent: readonly unknown[];
  readonly tracestate: readonly unknown[];
}

/** Which RPC a call is, for span names (`linkage.v1.LinkageGateway/QueryInformation`). */
export interface TracedRpc {
  readonly service: string;
  readonly method: string;
}

/** Where calls' traces come from: OpenTelemetry when it is configured, otherwise pass-through ids. */
export interface Tracing {
  startCall(rpc: TracedRpc, incoming: IncomingTrace, requestId: string): ServerCallTrace;
  /** Exports what is still buffered and stops. */
  close(): Promise<void>;
}
