/**
 * The trace step: each call's request id, its trace (src/tracing/), and its access log line.
 *
 * It runs right after `observe`, before the caller is identified, so that refused calls (UNAUTHENTICATED,
 * RESOURCE_EXHAUSTED) have a span and a log line too. The request id is the caller's `x-request-id` when it is a
 * sane token, or one the gateway assigns; the context step puts it and the trace id on the call's logger, so
 * every line the call logs carries both. When the call ends, its span ends with the status code, and one access
 * line is logged (LINKGW_ACCESS_LOG): method, agency, status code name, duration and the record id, never a
 * request field.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Level, Logger } from '../log/logger.js';
import type { Tracing } from '../tracing/call-trace.js';
import { newRequestId } from '../tracing/ids.js';
import type { CallStep } from './call-pipeline.js';
import { statusName } from './status.js';

/** The access log's level, or off. */
export type AccessLog = Level | 'off';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `x-request-id`, when it is a sane token (the same one idempotent retries are keyed by). */
export function callerRequestId(md: Metadata): string | undefined {
  const v = md.get('x-request-id')[0];
  return typeof v === 'string' && REQUEST_ID.test(v) ? v : undefined;
}

export function traceStep(tracing: Tracing, log: Logger, accessLog: AccessLog): CallStep {
  return (scope) => {
    const md = scope.call.metadata;
    const trace = tracing.startCall(scope.rpc, { traceparent: md.get('traceparent'), tracestate: md.get('tracestate') }, callerRequestId(md) ?? newRequestId());
    scope.trace = trace;
    scope.onEnd(({ code }) => {
      const agency = scope.agency?.id;
      trace.end(code, agency);
      if (accessLog === 'off') return;
      log[accessLog]('access', {
        requestId: trace.requestId,
        traceId: trace.traceId,
        method: scope.rpc.method,
        agency,
        code: statusName(code),
        durationMs: Math.round(Number(process.hrtime.bigint() - scope.started) / 1e3) / 1e3,
        ...(trace.recordId !== undefined ? { recordId: trace.recordId } : {}),
        ...(trace.records > 1 ? { records: trace.records } : {}),
      });
    });
  };
}
