/**
 * Adapters from plain async service methods to grpc-js handlers for unary and server-streaming calls. Each
 * opens the call through the pipeline (identity, context, in-flight slot, admission: call-pipeline.ts), turns a
 * malformed request into INVALID_ARGUMENT, runs the method, and ends the call with the status its result or
 * error maps to (status.ts). Bidirectional streams are in bidi-ordered.ts.
 */
import { status, type handleServerStreamingCall, type handleUnaryCall, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { CallContext } from '../service/call-context.js';
import type { CallPipeline, RpcInfo } from './call-pipeline.js';
import type { CallObserver } from './call-steps.js';
import { Malformed } from './service-definition.js';
import { failStream, writeInTurn } from './stream-writer.js';

export type UnaryMethod<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;
export type ServerStreamingMethod<Req, Res> = (req: Req, ctx: CallContext, write: (res: Res) => Promise<void>) => Promise<void>;

/** What an adapter needs: the pipeline to open calls with, and who counts messages. */
export interface AdapterEnv {
  readonly pipeline: CallPipeline;
  readonly observer?: CallObserver;
}

export function malformed(m: unknown): GatewayError | undefined {
  return m instanceof Malformed ? new GatewayError('INVALID_ARGUMENT', `the request is not a valid ${m.typeName} message`) : undefined;
}

export function unary<Req, Res>(env: AdapterEnv, rpc: RpcInfo, fn: UnaryMethod<Req, Res>): handleUnaryCall<Req | Malformed, Res> {
  return (call: ServerUnaryCall<Req | Malformed, Res>, callback) => {
    notify(env.observer, (o) => o.messageReceived?.(rpc));
    env.pipeline.open(rpc, call).then(
      (scope) => {
        const bad = malformed(call.request);
        (bad ? Promise.reject(bad) : fn(call.request as Req, scope.ctx)).then(
          (res) => {
            scope.end({ code: status.OK });
            notify(env.observer, (o) => o.messageSent?.(rpc));
            callback(null, res);
          },
          (err: unknown) => callback(scope.fail(err)),
        );
      },
      (se) => callback(se),
    );
  };
}

export function serverStreaming<Req, Res>(env: AdapterEnv, rpc: RpcInfo, fn: ServerStreamingMethod<Req, Res>): handleServerStreamingCall<Req | Malformed, Res> {
  return (call: ServerWritableStream<Req | Malformed, Res>) => {
    notify(env.observer, (o) => o.messageReceived?.(rpc));
    const write = (res: Res) =>
      writeInTurn(call, res).then(() => {
        notify(env.observer, (o) => o.messageSent?.(rpc));
      });
    env.pipeline.open(rpc, call).then(
      (scope) => {
        const bad = malformed(call.request);
        (bad ? Promise.reject(bad) : fn(call.request as Req, scope.ctx, write)).then(
          () => {
            scope.end({ code: status.OK });
            call.end();
          },
          (err: unknown) => failStream(call, scope.fail(err)),
        );
      },
      (se) => failStream(call, se),
    );
  };
}
