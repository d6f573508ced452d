/**
 * The gateway's standard call steps, in the order they run (see call-pipeline.ts):
 *
 *   observe   report the outcome of every call (metrics, logs), refused ones included
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
      if (code === status.INTERNAL || code === status.UNKNOWN) log.error('call failed', { method, agency, code: statusName(code), err: error });
      else if (error !== undefined && code !== status.OK) log.debug('call refused', { method, agency, code: statusName(code), err: error });
    });
  };
}

export function identifyStep(registry: () => AgencyRegistry, insecure: boolean): CallStep {
  return (scope) => {
    scope.agency = identify(scope.call, registry(), insecure);
  };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's deadline, its cancellation, and its request id, as a CallContext. */
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
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(deadline)) {
      timer = setTimeout(() => abort(new GatewayError('DEADLINE_EXCEEDED', 'the deadline passed')), Math.max(0, deadline - Date.now()));
      timer.unref();
    }
    const v = call.metadata.get('x-request-id')[0];
    const requestId = typeof v === 'string' && REQUEST_ID.test(v) ? v : undefined;
    const method = scope.rpc.method;
    const ctx: CallContext = {
      agency,
      method,
      deadline,
      signal: ac.signal,
      requestId,
      log: log.child({ method, agency: agency.id, ...(requestId ? { requestId } : {}) }),
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
}

/** The pipeline every gateway call runs through. */
export function gatewayPipeline(o: GatewayPipelineOptions): CallPipeline {
  return new CallPipeline([
    observeStep(o.log, o.observer),
    identifyStep(o.registry, o.insecure),
    contextStep(o.log),
    inFlightStep(o.inFlight),
    ...(o.admission ? [admitStep(o.admission)] : []),
  ]);
}
