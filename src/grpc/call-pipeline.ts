/**
 * One call pipeline for every kind of call (unary, server-streaming, bidirectional), in the spirit of grpc-js
 * server interceptors and connect's interceptors: a call is opened by running a list of steps in order
 * (observe, identify, context, in-flight slot, admission), each of which may refuse the call by throwing a
 * GatewayError and may register what to undo when the call ends. The call ends exactly once, with a status
 * code; the end hooks then run in reverse order (leave the slot, clear the deadline timer, report the outcome).
 *
 * The adapters (unary.ts, server-streaming.ts, bidi-ordered.ts) only decide when a call has ended and what is
 * sent back; everything that is the same for every call lives in the steps.
 */
import { status, type Metadata } from '@grpc/grpc-js';
import type { AgencyEntry } from '../core/agency-registry.js';
import { GatewayError } from '../core/errors.js';
import type { CallContext } from '../service/call-context.js';
import type { ServerCallTrace } from '../tracing/call-trace.js';
import type { IdentifiableCall } from './identity.js';
import { toServiceError } from './status.js';

export type RpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** Which RPC a call is: the proto service's full name, the method's name, and its kind. */
export interface RpcInfo {
  readonly service: string;
  readonly method: string;
  readonly type: RpcType;
  /** Streams, and server streams that stay open (Health.Watch): they count as streams in the in-flight budget. */
  readonly longLived?: boolean;
}

/** What the pipeline needs of a grpc-js server call of any kind. */
export interface ServerCallLike extends IdentifiableCall {
  readonly metadata: Metadata;
  /** grpc-js sets it once the stream was reset or its deadline passed: possibly before the handler runs. */
  readonly cancelled?: boolean;
  getDeadline(): Date | number;
  on(event: 'cancelled', l: () => void): unknown;
  removeListener(event: 'cancelled', l: () => void): unknown;
}

/** How a call ended: its status code and, unless OK, the error behind it (for logs, never for the client). */
export interface CallEnd {
  readonly code: status;
  readonly error?: unknown;
}

/** One call from its arrival to its status. Steps fill in the agency and the context. */
export class CallScope {
  readonly started = process.hrtime.bigint();
  agency: AgencyEntry | undefined;
  /** Set by the trace step: the call's request id and trace (trace-step.ts). */
  trace: ServerCallTrace | undefined;
  #ctx: CallContext | undefined;
  #abort: ((reason: GatewayError) => void) | undefined;
  readonly #ends: ((end: CallEnd) => void)[] = [];
  #ended = false;

  constructor(
    readonly rpc: RpcInfo,
    readonly call: ServerCallLike,
  ) {}

  /** The call's context, once the context step has run. */
  get ctx(): CallContext {
    if (!this.#ctx) throw new GatewayError('INTERNAL', 'the call context is not built yet');
    return this.#ctx;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Set by the context step: the context and the function that aborts its signal. */
  setContext(ctx: CallContext, abort: (reason: GatewayError) => void): void {
    this.#ctx = ctx;
    this.#abort = abort;
  }

  /** Tells the work still running for this call to stop (its signal aborts). */
  abort(reason = new GatewayError('CANCELLED', 'the call was cancelled')): void {
    this.#abort?.(reason);
  }

  /** Runs `fn` when the call ends (hooks run in reverse order of registration). */
  onEnd(fn: (end: CallEnd) => void): void {
    this.#ends.push(fn);
  }

  /** Ends the call once; later calls do nothing. A hook that throws does not stop the others. */
  end(end: CallEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    for (let i = this.#ends.length - 1; i >= 0; i--) {
      try {
        this.#ends[i]!(end);
      } catch {
        // An end hook is bookkeeping; it must not keep the others from running.
      }
    }
  }

  /** Ends the call with the status an error maps to, and returns that status for the client. */
  fail(err: unknown): ReturnType<typeof toServiceError> {
    const se = toServiceError(err);
    this.end({ code: se.code, error: err });
    return se;
  }
}

/** One step of opening a call: may refuse it by throwing, and may register end hooks on the scope. */
export type CallStep = (scope: CallScope) => void | Promise<void>;

export class CallPipeline {
  constructor(private readonly steps: readonly CallStep[]) {}

  /**
   * Opens a call by running every step in order. If a step refuses the call, the call ends with the mapped
   * status (the end hooks of the steps before it run) and the promise rejects with the client's status.
   * Steps that return nothing cost no promise hop.
   */
  open(rpc: RpcInfo, call: ServerCallLike): Promise<CallScope> {
    const scope = new CallScope(rpc, call);
    const steps = this.steps;
    const from = (i: number): Promise<CallScope> | CallScope => {
      for (; i < steps.length; i++) {
        const r = steps[i]!(scope);
        if (r !== undefined) return r.then(() => from(i + 1));
      }
      return scope;
    };
    try {
      return Promise.resolve(from(0)).catch((err: unknown) => Promise.reject(scope.fail(err)));
    } catch (err) {
      return Promise.reject(scope.fail(err));
    }
  }
}
