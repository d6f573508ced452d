/** The W3C trace context as gRPC metadata of an outgoing call (`traceparent`, and `tracestate` when there is one). */
import type { TraceHeaders } from './call-trace.js';

export function traceMetadata(t: TraceHeaders): Record<string, string> {
  const md: Record<string, string> = {};
  if (t.traceparent) md.traceparent = t.traceparent;
  if (t.tracestate) md.tracestate = t.tracestate;
  return md;
}
