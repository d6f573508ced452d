/**
 * Bidirectional streams answered message by message, in order (IssueCodes, reflection).
 *
 * `open` makes the stream's handler (which may keep per-stream state). The handler is called synchronously for
 * each well-formed request, in arrival order, and returns the work for that request, which runs once the
 * request is admitted: so per-stream state (the IssueCodes offset) follows arrival order even when admissions
 * finish out of order. A few requests are worked on at once; results are written in arrival order. Reading
 * pauses while that many are in progress, so a fast client cannot make the server buffer without bound.
 *
 * The call ends once: after the client's half-close and the last answer (OK), with the first error, or
 * because the client went away. In the last case the work still running is told to stop, and the stream keeps
 * its in-flight slot until that work has ended, so an agency cannot run more work at once than its share by
 * cancelling streams.
 */
import { status, type handleBidiStreamingCall, type ServerDuplexStream } from '@grpc/grpc-js';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { CallContext } from '../service/call-context.js';
import type { CallScope, RpcInfo } from './call-pipeline.js';
import type { RefusalObserver } from '../limits/refusals.js';
import type { Admission } from './call-steps.js';
import { malformed, type AdapterEnv } from './handlers.js';
import type { Malformed } from './service-definition.js';
import { toServiceError } from './status.js';
import { failStream, writeInTurn } from './stream-writer.js';

export type BidiOrderedMethod<Req, Res> = (ctx: CallContext) => (req: Req) => () => Promise<Res>;

export interface BidiEnv extends AdapterEnv {
  /** Admits each message of a stream (the per-call admission step skips streams). */
  readonly admission?: Admission;
  /**
   * A stream that makes no progress for this long (no message received, no answer taken by the client) is
   * ended, so an idle or unread stream cannot hold its slot for ever. Unset: no limit.
   */
  readonly idleTimeoutMs?: number;
  readonly refusals?: RefusalObserver;
}

/** Messages worked on at once per stream: one message's record commit overlaps the next one's mapping. */
const DEPTH = 4;

export function bidiOrdered<Req, Res>(env: BidiEnv, rpc: RpcInfo, open: BidiOrderedMethod<Req, Res>): handleBidiStreamingCall<Req | Malformed, Res> {
  return (call: ServerDuplexStream<Req | Malformed, Res>) => {
    env.pipeline.open(rpc, call).then(
      (scope) => run(env, scope, call, open),
      (se) => failStream(call, se),
    );
  };
}

function run<Req, Res>(env: BidiEnv, scope: CallScope, call: ServerDuplexStream<Req | Malformed, Res>, open: BidiOrderedMethod<Req, Res>): void {
  const { ctx, rpc } = scope;
  // Results are written strictly in arrival order through `chain`.
  let chain = Promise.resolve();
  let finished = false;
  let idle: NodeJS.Timeout | undefined;
  const progress = () => {
    const ms = env.idleTimeoutMs;
    if (ms === undefined || finished) return;
    clearTimeout(idle);
    idle = setTimeout(() => {
      notify(env.refusals, (o) => o.refused('stream_idle'));
      finish({ err: new GatewayError('DEADLINE_EXCEEDED', `no progress for ${ms} ms (no message sent, no answer read): the gateway ended this idle stream`) });
    }, ms);
    idle.unref();
  };
  scope.onEnd(() => clearTimeout(idle));
  progress();
  const finish = (outcome: { ok: true } | { err: unknown } | { gone: true }) => {
    if (finished) return;
    finished = true;
    clearTimeout(idle);
    if ('ok' in outcome) {
      scope.end({ code: status.OK });
      call.end();
    } else if ('err' in outcome) {
      failStream(call, scope.fail(outcome.err));
    } else {
      // The client went away: stop the work still running, and end the call (giving back the slot) once it has.
      const reason = ctx.signal.aborted && ctx.signal.reason instanceof GatewayError ? ctx.signal.reason : new GatewayError('CANCELLED', 'the call was cancelled');
      scope.abort(reason);
      void chain.finally(() => scope.end({ code: toServiceError(reason).code, error: reason }));
    }
  };
  // grpc-js emits 'cancelled' and destroys the stream (no 'end', no 'error') when the client cancels or the
  // deadline passes; 'close' covers any other way the stream goes away first.
  call.on('cancelled', () => finish({ gone: true }));
  call.on('close', () => finish({ gone: true }));
  call.on('error', () => finish({ gone: true }));
  const handler = open(ctx);
  let working = 0;
  call.on('data', (req: Req | Malformed) => {
    if (finished) return;
    progress();
    notify(env.observer, (o) => o.messageReceived?.(rpc));
    working++;
    if (working >= DEPTH) call.pause();
    const bad = malformed(req);
    const work = bad ? undefined : handler(req as Req);
    const result = (async () => {
      if (bad) throw bad;
      await env.admission?.admit(ctx.agency.id);
      return work!();
    })();
    result.catch(() => undefined); // observed below, in order
    chain = chain.then(async () => {
      if (finished) return;
      try {
        const res = await result;
        if (!finished) {
          await writeInTurn(call, res);
          progress();
          notify(env.observer, (o) => o.messageSent?.(rpc));
        }
      } catch (err) {
        finish({ err });
      } finally {
        working--;
        if (working < DEPTH && !finished) call.resume();
      }
    });
  });
  call.on('end', () => {
    void chain.then(() => finish({ ok: true }));
  });
}
