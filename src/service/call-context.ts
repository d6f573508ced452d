/**
 * What a service method knows about the call it serves, independent of grpc-js: who is calling (from the
 * certificate), until when, whether the caller gave up, and the caller's request id. The gRPC adapter builds
 * it (src/grpc/call-pipeline.ts); services and tests only read it.
 */
import type { AgencyEntry, AgencyRole } from '../core/agency-registry.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../log/logger.js';
import type { CallTrace } from '../tracing/call-trace.js';

export interface CallContext {
  readonly agency: AgencyEntry;
  readonly method: string;
  /** Milliseconds since the epoch; Infinity when the caller set no deadline. */
  readonly deadline: number;
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** The caller's `x-request-id`, when it is a sane token. */
  readonly requestId: string | undefined;
  /** Carries every log line's request id and trace id. */
  readonly log: Logger;
  /** The call's trace: what its provider call and record waits hang from (unset in tests that need none). */
  readonly trace?: CallTrace;
}

/** Throws the right status when the call is already over, so no more work is spent on it. */
export function throwIfDone(ctx: Pick<CallContext, 'deadline' | 'signal'>): void {
  if (ctx.signal.aborted) throw ctx.signal.reason instanceof GatewayError ? ctx.signal.reason : new GatewayError('CANCELLED', 'the call was cancelled');
  if (Date.now() >= ctx.deadline) throw new GatewayError('DEADLINE_EXCEEDED', 'the deadline passed');
}

/** Milliseconds left, at most `cap`. */
export function remaining(ctx: Pick<CallContext, 'deadline'>, cap: number): number {
  return Math.max(0, Math.min(cap, ctx.deadline - Date.now()));
}

/** PERMISSION_DENIED unless the calling agency has `role`. */
export function requireRole(agency: AgencyEntry, role: AgencyRole, what: string): void {
  if (!agency.roles.has(role)) throw new GatewayError('PERMISSION_DENIED', `agency ${agency.id} may not ${what}`);
}
