/**
 * The gateway's standard call steps, in the order they run (see call-pipeline.ts):
 *
 *   observe   report the outcome of every call (metrics, logs), refused ones included
 *   trace     request id, trace (spans when OpenTelemetry is on), access log line (trace-step.ts)
 *   identify  the calling agency from its certificate (identity.ts)
 *   context   deadline, cancellation and request id, as a CallContext with an AbortSignal
 *   inFlight  a slot of the server's in-flight budget, given back when the call ends
 *   admit     the agency's rate limit (unary and server-streaming calls; streams admit per message)
 */
import { status } from '@grpc/grpc-js';
import type { AgencyRegistry } from '../core/agency-registry.js';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { InFlight } from '../limits/in-flight.js';
import type { Logger } from '../log/logger.js';
import type { CallContext } from '../service/call-context.js';
import { CallPipeline, type CallStep, type RpcInfo } from './call-pipeline.js';

export type { RpcInfo } from './call-pipeline.js';
import { identify } from './identity.js';
import { statusName } from './status.js';
import { callerRequestId, traceStep, type AccessLog } from './trace-step.js';
import type { Tracing } from '../tracing/call-trace.js';
import { untraced } from '../tracing/untraced.js';

export interface CallObserver {
  /** A call arrived (before anything else is known about it). */
  callStarted?(rpc: RpcInfo): void;
  /** One call ended with `code`; `agency` is undefined when the caller was not identified. */
  callEnded(rpc: RpcInfo, agency: string | undefined, code: number, seconds: number): void;
  /** One request message was received, or one response message sent, on a call. */
  messageReceived?(rpc: RpcInfo): void;
  messageSent?(rpc: RpcInfo): void;
}

/** Decides whether an agency may make one more call (or send one more message) now; throws to refuse. */
export interface Admission {
  admit(agency: string, cost?: number): Promise<void>;
}

export function observeStep(log: Logger, observer?: CallObserver): CallStep {
  return (scope) => {
    notify(observer, (o) => o.callStarted?.(scope.rpc));
    scope.onEnd(({ code, error }) => {
      const agency = scope.agency?.id;
      const method = scope.rpc.method;
      notify(observer, (o) => o.callEnded(scope.rpc, agency, code, Number(process.hrtime.bigint() - scope.started) / 1e9));
      const ids = scope.trace ? { requestId: scope.trace.requestId, traceId: scope.trace.traceId } : {};
      if (code === status.INTERNAL || code === status.UNKNOWN) log.error('call failed', { ...ids, method, agency, code: statusName(code), err: error });
      else if (error !== undefined && code !== status.OK) log.debug('call refused', { ...ids, method, agency, code: statusName(code), err: error });
    });
  };
}

export function identifyStep(registry: () => AgencyRegistry, insecure: boolean): CallStep {
  return (scope) => {
    scope.agency = identify(scope.call, registry(), insecure);
  };
}

/** The caller's deadline, its cancellation, and its request id, as a CallContext (with the trace, when traced). */
export function contextStep(log: Logger): CallStep {
  return (scope) => {
    const { call } = scope;
    const agency = scope.agency!;
    const d = call.getDeadline();
    const deadline = d instanceof Date ? d.getTime() : d;
    const ac = new AbortController();
    const abort = (reason: GatewayError) => {
      if (!ac.signal.aborted) ac.abort(reason);
    };
    const onCancel = () => abort(new GatewayError('CANCELLED', 'the call was cancelled'));
    call.on('cancelled', onCancel);
    // A stream reset before its handler ran (HTTP/2 Rapid Reset: HEADERS, DATA and RST_STREAM at once) emitted
    // 'cancelled' before anyone listened: the call starts cancelled, so nothing is computed or committed for it.
    if (call.cancelled) onCancel();
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(deadline)) {
      timer = setTimeout(() => abort(new GatewayError('DEADLINE_EXCEEDED', 'the deadline passed')), Math.max(0, deadline - Date.now()));
      timer.unref();
    }
    const requestId = callerRequestId(call.metadata);
    const method = scope.rpc.method;
    const trace = scope.trace;
    // The call's logger is made on its first use: most calls log nothing of their own (the access log and
    // the outcome line are written by the trace and observe steps), and a child logger is five closures.
    let callLog: Logger | undefined;
    const ctx: CallContext = {
      agency,
      method,
      deadline,
      signal: ac.signal,
      requestId,
      get log() {
        return (callLog ??= log.child({ method, agency: agency.id, ...(trace ? { requestId: trace.requestId, traceId: trace.traceId } : requestId ? { requestId } : {}) }));
      },
      ...(trace ? { trace } : {}),
    };
    scope.setContext(ctx, abort);
    scope.onEnd(() => {
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    });
  };
}

/** A slot of the server's in-flight budget; a stream (which may stay open long) also counts as a stream. */
export function inFlightStep(inFlight: InFlight): CallStep {
  return (scope) => {
    scope.onEnd(inFlight.enter(scope.agency!.id, scope.rpc.longLived ? 'stream' : 'call'));
  };
}

/** Admission once per call, for calls that carry one request; a bidirectional stream admits each message. */
export function admitStep(admission: Admission): CallStep {
  return (scope) => (scope.rpc.type === 'bidi_stream' || scope.rpc.type === 'client_stream' ? undefined : admission.admit(scope.agency!.id));
}

export interface GatewayPipelineOptions {
  registry(): AgencyRegistry;
  readonly insecure: boolean;
  readonly log: Logger;
  readonly inFlight: InFlight;
  readonly admission?: Admission;
  readonly observer?: CallObserver;
  /** Where calls' spans go; default: none recorded, ids passed through (src/tracing/untraced.ts). */
  readonly tracing?: Tracing;
  /** The access log line's level (LINKGW_ACCESS_LOG); default info. */
  readonly accessLog?: AccessLog;
}

/** The pipeline every gateway call runs through. */
export function gatewayPipeline(o: GatewayPipelineOptions): CallPipeline {
  return new CallPipeline([
    observeStep(o.log, o.observer),
    traceStep(o.tracing ?? untraced, o.log, o.accessLog ?? 'info'),
    identifyStep(o.registry, o.insecure),
    contextStep(o.log),
    inFlightStep(o.inFlight),
    ...(o.admission ? [admitStep(o.admission)] : []),
  ]);
}
