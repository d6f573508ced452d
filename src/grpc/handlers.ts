/**
 * Adapters from plain async handlers to grpc-js call handlers. Each one identifies the caller from its
 * certificate, builds the CallContext, turns a malformed request into INVALID_ARGUMENT, maps every error to a
 * deliberate status (status.ts), and reports each finished call to the observer (metrics, logs).
 */
import {
  status,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type Metadata,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import type { AgencyEntry, AgencyRegistry } from '../core/agency-registry.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../log/logger.js';
import type { CallContext } from './call-context.js';
import { identify } from './identity.js';
import { Malformed } from './service-definition.js';
import { statusName, toServiceError } from './status.js';

export interface CallObserver {
  /** One call ended with `code`; `agency` is undefined when the caller was not identified. */
  callEnded(method: string, agency: string | undefined, code: number, seconds: number): void;
  /** A call began (before identity): each is followed by one callEnded. */
  callStarted?(method: string): void;
  messageReceived?(method: string): void;
  messageSent?(method: string): void;
}

export interface HandlerEnv {
  registry(): AgencyRegistry;
  readonly insecure: boolean;
  readonly log: Logger;
  readonly observer?: CallObserver;
  /** Admission control after identity (per-agency rate limits): throws RESOURCE_EXHAUSTED to refuse. */
  readonly admit?: (ctx: CallContext) => Promise<void>;
  /** Calls handled at once, across methods; more are refused at once with RESOURCE_EXHAUSTED. */
  readonly maxInFlight?: number;
  /** Calls one agency may have in flight, so that one agency (or a leaked certificate) cannot starve the rest. */
  readonly maxInFlightPerAgency?: number;
}

let inFlight = 0;
const inFlightByAgency = new Map<string, number>();

/** Calls being handled now (all gateways in this process). */
export function callsInFlight(): number {
  return inFlight;
}

function enter(env: HandlerEnv, agency: string): () => void {
  if (env.maxInFlight !== undefined && inFlight >= env.maxInFlight)
    throw new GatewayError('RESOURCE_EXHAUSTED', 'the gateway is at capacity; retry shortly', { details: { 'retry-after-ms': '100' } });
  const mine = inFlightByAgency.get(agency) ?? 0;
  if (env.maxInFlightPerAgency !== undefined && mine >= env.maxInFlightPerAgency)
    throw new GatewayError('RESOURCE_EXHAUSTED', 'this agency has too many calls in progress; retry shortly', { details: { 'retry-after-ms': '100' } });
  inFlight++;
  inFlightByAgency.set(agency, mine + 1);
  let left = false;
  return () => {
    if (left) return;
    left = true;
    inFlight--;
    const n = (inFlightByAgency.get(agency) ?? 1) - 1;
    if (n > 0) inFlightByAgency.set(agency, n);
    else inFlightByAgency.delete(agency);
  };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(md: Metadata): string | undefined {
  const v = md.get('x-request-id')[0];
  return typeof v === 'string' && REQUEST_ID.test(v) ? v : undefined;
}

function deadlineOf(call: { getDeadline(): Date | number }): number {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : d;
}

interface AnyServerCall {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  getAuthContext(): ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>;
  on(event: 'cancelled', l: () => void): unknown;
  removeListener(event: 'cancelled', l: () => void): unknown;
}

function begin(env: HandlerEnv, method: string, call: AnyServerCall): { ctx: CallContext; done: () => void; abort: () => void } {
  env.observer?.callStarted?.(method);
  const agency: AgencyEntry = identify(call, env.registry(), env.insecure);
  const deadline = deadlineOf(call);
  const ac = new AbortController();
  const onCancel = () => ac.abort(new GatewayError('CANCELLED', 'the call was cancelled'));
  call.on('cancelled', onCancel);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) {
    timer = setTimeout(() => ac.abort(new GatewayError('DEADLINE_EXCEEDED', 'the deadline passed')), Math.max(0, deadline - Date.now()));
    timer.unref();
  }
  const requestId = requestIdOf(call.metadata);
  const ctx: CallContext = {
    agency,
    method,
    deadline,
    signal: ac.signal,
    requestId,
    log: env.log.child({ method, agency: agency.id, ...(requestId ? { requestId } : {}) }),
  };
  return {
    ctx,
    done: () => {
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    },
    abort: onCancel,
  };
}

interface WritableCall<Res> {
  readonly destroyed: boolean;
  write(res: Res): boolean;
  once(event: 'drain' | 'close', l: () => void): unknown;
  removeListener(event: 'drain' | 'close', l: () => void): unknown;
}

/**
 * Writes one message of a server stream and resolves when the stream can take the next one. A stream that the
 * client cancelled is destroyed by grpc-js and never drains: then this rejects (CANCELLED) instead of waiting
 * for ever, so the handler ends and its in-flight slot is released.
 */
function writeInTurn<Res>(call: WritableCall<Res>, res: Res): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const gone = () => new GatewayError('CANCELLED', 'the call was cancelled');
    if (call.destroyed) return reject(gone());
    if (call.write(res)) return resolve();
    const onDrain = () => {
      call.removeListener('close', onClose);
      resolve();
    };
    const onClose = () => {
      call.removeListener('drain', onDrain);
      reject(gone());
    };
    call.once('drain', onDrain);
    call.once('close', onClose);
  });
}

function report(env: HandlerEnv, method: string, agency: string | undefined, code: number, started: bigint, err?: unknown): void {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  env.observer?.callEnded(method, agency, code, seconds);
  if (code === status.INTERNAL || code === status.UNKNOWN) env.log.error('call failed', { method, agency, code: statusName(code), err });
  else if (err !== undefined && code !== status.OK) env.log.debug('call refused', { method, agency, code: statusName(code), err });
}

function malformed(m: unknown): GatewayError | undefined {
  return m instanceof Malformed ? new GatewayError('INVALID_ARGUMENT', `the request is not a valid ${m.typeName} message`) : undefined;
}

/**
 * Runs one unary or server-streaming call: identity, in-flight cap, malformed request, admission, then `body`;
 * reports the outcome, and hands the result or the mapped error to `ok` / `fail`.
 */
function runCall<Req, T>(
  env: HandlerEnv,
  method: string,
  call: AnyServerCall & { readonly request: Req },
  body: (req: Req, ctx: CallContext) => Promise<T>,
  ok: (value: T) => void,
  fail: (se: ReturnType<typeof toServiceError>) => void,
): void {
  const started = process.hrtime.bigint();
  let agency: string | undefined;
  let done: (() => void) | undefined;
  let leave: (() => void) | undefined;
  (async () => {
    env.observer?.messageReceived?.(method);
    const b = begin(env, method, call);
    done = b.done;
    agency = b.ctx.agency.id;
    leave = enter(env, b.ctx.agency.id);
    const bad = malformed(call.request);
    if (bad) throw bad;
    await env.admit?.(b.ctx);
    return body(call.request, b.ctx);
  })()
    .finally(() => leave?.())
    .then(
      (value) => {
        done?.();
        report(env, method, agency, status.OK, started);
        ok(value);
      },
      (err: unknown) => {
        done?.();
        const se = toServiceError(err);
        report(env, method, agency, se.code, started, err);
        fail(se);
      },
    );
}

export function unary<Req, Res>(env: HandlerEnv, method: string, fn: (req: Req, ctx: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call, callback) =>
    runCall(env, method, call as unknown as AnyServerCall & { request: Req }, fn, (res) => {
      env.observer?.messageSent?.(method);
      callback(null, res);
    }, (se) => callback(se));
}

export function serverStreaming<Req, Res>(
  env: HandlerEnv,
  method: string,
  fn: (req: Req, ctx: CallContext, write: (res: Res) => Promise<void>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const write = (res: Res) => {
      env.observer?.messageSent?.(method);
      return writeInTurn(call, res);
    };
    runCall(
      env,
      method,
      call as unknown as AnyServerCall & { request: Req },
      (req, ctx) => fn(req, ctx, write),
      () => call.end(),
      // grpc-js turns an 'error' event on a server stream into the call's status.
      (se) => call.emit('error', Object.assign(new Error(se.details), se)),
    );
  };
}

/**
 * Bidirectional streams answered message by message, in order. `open` makes the stream's handler (which may
 * keep per-stream state). The handler is called synchronously for each well-formed request, in arrival order,
 * and returns the work for that request, which runs once the request is admitted: so per-stream state (the
 * IssueCodes offset) follows arrival order even when admissions finish out of order. A few requests are worked
 * on at once; results are written in arrival order. Reading pauses while that many are in progress, so a fast
 * client cannot make the server buffer without bound. A stream the client cancels, or whose deadline passes,
 * ends at once: its slot is released and the work still running is dropped.
 */
export function bidiOrdered<Req, Res>(
  env: HandlerEnv,
  method: string,
  open: (ctx: CallContext) => (req: Req) => () => Promise<Res>,
): handleBidiStreamingCall<Req, Res> {
  return (call: ServerDuplexStream<Req, Res>) => {
    const started = process.hrtime.bigint();
    let b: ReturnType<typeof begin>;
    const fail = (err: unknown, agency?: string) => {
      const se = toServiceError(err);
      report(env, method, agency, se.code, started, err);
      // grpc-js turns an 'error' event on a server stream into the call's status.
      call.emit('error', Object.assign(new Error(se.details), se));
    };
    try {
      b = begin(env, method, call as unknown as AnyServerCall);
    } catch (err) {
      fail(err);
      return;
    }
    const { ctx } = b;
    let leave: () => void;
    try {
      leave = enter(env, ctx.agency.id);
    } catch (err) {
      b.done();
      fail(err, ctx.agency.id);
      return;
    }
    // Up to DEPTH messages are worked on at once (so one message's record commit overlaps the next one's
    // mapping); results are written strictly in arrival order through `chain`.
    let chain = Promise.resolve();
    // The call ends once: normally after 'end', with an error, or because the client went away.
    let failed = false;
    const finish = (outcome: { ok: true } | { err: unknown } | { gone: true }) => {
      if (failed) return;
      failed = true;
      if ('gone' in outcome) {
        // The client went away: the work still running is told to stop, and the stream keeps its slot until
        // that work has ended, so an agency cannot run more work at once than its share by cancelling.
        if (!ctx.signal.aborted) b.abort();
        void chain.finally(() => {
          b.done();
          leave();
        });
      } else {
        b.done();
        leave();
      }
      if ('ok' in outcome) {
        report(env, method, ctx.agency.id, status.OK, started);
        call.end();
      } else if ('err' in outcome) fail(outcome.err, ctx.agency.id);
      else report(env, method, ctx.agency.id, ctx.signal.aborted && ctx.signal.reason instanceof GatewayError ? toServiceError(ctx.signal.reason).code : status.CANCELLED, started);
    };
    // grpc-js emits 'cancelled' and destroys the stream (no 'end', no 'error') when the client cancels or the
    // deadline passes; 'close' covers any other way the stream goes away first.
    call.on('cancelled', () => finish({ gone: true }));
    call.on('close', () => finish({ gone: true }));
    call.on('error', () => finish({ gone: true }));
    const fn = open(ctx);
    let inFlight = 0;
    const DEPTH = 4;
    call.on('data', (req: Req) => {
      if (failed) return;
      env.observer?.messageReceived?.(method);
      inFlight++;
      if (inFlight >= DEPTH) call.pause();
      const bad = malformed(req);
      const run = bad ? undefined : fn(req);
      const work = (async () => {
        if (bad) throw bad;
        await env.admit?.(ctx);
        return run!();
      })();
      work.catch(() => undefined); // observed below, in order
      chain = chain.then(async () => {
        if (failed) return;
        try {
          const res = await work;
          if (!failed) {
            env.observer?.messageSent?.(method);
            await writeInTurn(call, res);
          }
        } catch (err) {
          finish({ err });
        } finally {
          inFlight--;
          if (inFlight < DEPTH && !failed) call.resume();
        }
      });
    });
    call.on('end', () => {
      void chain.then(() => finish({ ok: true }));
    });
  };
}
