/**
 * Calls' traces when OpenTelemetry is off (the default): nothing is recorded, but the ids still flow, so logs
 * carry a trace id and providers can join their spans to the caller's trace.
 *
 *   - The caller sent a valid traceparent: its trace id is the call's; the provider gets the caller's
 *     traceparent (and tracestate) as they came. The gateway is not a hop in the trace: the provider's span
 *     hangs from the caller's span, with the caller's sampling decision.
 *   - It sent none: the gateway makes a trace id for the call, and a provider gets a traceparent in that trace
 *     with sampled=0, so the provider's logs can be joined to the gateway's.
 *
 * Cost: one object per call and, for a call without traceparent, one UUID (~50 ns); no span, no timer, no
 * allocation per provider call or record (the object is its own child span).
 */
import type { ProvideResult } from '../service/ports.js';
import type { IncomingTrace, ProviderCallSpan, RecordWaitSpan, ServerCallTrace, TracedRpc, Tracing } from './call-trace.js';
import { newSpanId, newTraceId } from './ids.js';
import { formatTraceparent, parseTraceparent, parseTracestate } from './w3c-trace-context.js';

class UntracedCall implements ServerCallTrace, ProviderCallSpan {
  readonly traceId: string;
  readonly tracestate: string | undefined;
  #traceparent: string | undefined;
  recordId: string | undefined;
  records = 0;

  constructor(
    readonly requestId: string,
    incoming: IncomingTrace,
  ) {
    const parent = incoming.traceparent.length ? parseTraceparent(incoming.traceparent) : undefined;
    if (parent) {
      this.traceId = parent.traceId;
      this.#traceparent = formatTraceparent(parent.traceId, parent.parentId, parent.flags);
      this.tracestate = incoming.tracestate.length ? parseTracestate(incoming.tracestate) : undefined;
    } else {
      // A tracestate without a valid traceparent is discarded with it (the spec).
      this.traceId = newTraceId();
      this.tracestate = undefined;
    }
  }

  get traceparent(): string {
    // Made on the first provider call only: most calls (IssueCode) make none.
    return (this.#traceparent ??= formatTraceparent(this.traceId, newSpanId(), 0));
  }

  startProviderCall(): ProviderCallSpan {
    return this;
  }

  startRecordWait(recordId: string): RecordWaitSpan | undefined {
    if (this.records++ === 0) this.recordId = recordId;
    return undefined;
  }

  end(_?: number | ProvideResult): void {}
}

export const untraced: Tracing = {
  startCall: (_rpc: TracedRpc, incoming: IncomingTrace, requestId: string) => new UntracedCall(requestId, incoming),
  close: async () => undefined,
};
