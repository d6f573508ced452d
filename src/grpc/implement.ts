/**
 * Typed service wiring: `implement(service, env, methods)` takes a protobuf-es service descriptor and one plain
 * async method per RPC, typed from the descriptor (request and response shapes, and the call kind), and gives
 * back what grpc-js `addService` takes. A missing or mistyped method is a compile error, the way connect-es
 * types `ServiceImpl<Desc>`; every call goes through the adapters and so through the one call pipeline.
 */
import type { DescMessage, DescMethod, DescService, MessageShape } from '@bufbuild/protobuf';
import type { ServiceDefinition, UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { bidiOrdered, type BidiEnv, type BidiOrderedMethod } from './bidi-ordered.js';
import type { RpcInfo, RpcType } from './call-pipeline.js';
import { serverStreaming, unary, type ServerStreamingMethod, type UnaryMethod } from './handlers.js';
import { serverDefinition } from './service-definition.js';

type MethodOf<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? UnaryMethod<MessageShape<I>, MessageShape<O>>
  : M extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreamingMethod<MessageShape<I>, MessageShape<O>>
    : M extends { methodKind: 'bidi_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? BidiOrderedMethod<MessageShape<I>, MessageShape<O>>
      : never;

/** One method per RPC of `S`, keyed by the RPC's local name (`issueCode` for IssueCode). */
export type ServiceMethods<S extends DescService> = { [K in keyof S['method']]: MethodOf<S['method'][K]> };

export interface ImplementedService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

const TYPES: Record<DescMethod['methodKind'], RpcType> = {
  unary: 'unary',
  server_streaming: 'server_stream',
  client_streaming: 'client_stream',
  bidi_streaming: 'bidi_stream',
};

export function rpcInfo(service: DescService, method: DescMethod, longLived = false): RpcInfo {
  const type = TYPES[method.methodKind];
  return { service: service.typeName, method: method.name, type, longLived: longLived || type === 'bidi_stream' || type === 'client_stream' };
}

export interface ImplementOptions<S extends DescService> {
  /** Server-streaming methods that stay open long (Health.Watch): they count as streams in the budget. */
  readonly longLived?: readonly (keyof S['method'] & string)[];
}

export function implement<S extends DescService>(service: S, env: BidiEnv, methods: ServiceMethods<S>, opts: ImplementOptions<S> = {}): ImplementedService {
  const implementation: UntypedServiceImplementation = {};
  const byName = methods as unknown as Record<string, unknown>;
  for (const m of service.methods) {
    const fn = byName[m.localName];
    if (typeof fn !== 'function') throw new TypeError(`${service.typeName}.${m.name} has no implementation`);
    const rpc = rpcInfo(service, m, opts.longLived?.includes(m.localName) ?? false);
    let handler: UntypedHandleCall;
    switch (m.methodKind) {
      case 'unary':
        handler = unary(env, rpc, fn as UnaryMethod<unknown, unknown>) as UntypedHandleCall;
        break;
      case 'server_streaming':
        handler = serverStreaming(env, rpc, fn as ServerStreamingMethod<unknown, unknown>) as UntypedHandleCall;
        break;
      case 'bidi_streaming':
        handler = bidiOrdered(env, rpc, fn as BidiOrderedMethod<unknown, unknown>) as UntypedHandleCall;
        break;
      case 'client_streaming':
        throw new TypeError(`${service.typeName}.${m.name}: client-streaming calls have no adapter`);
    }
    implementation[m.localName] = handler;
  }
  return { definition: serverDefinition(service), implementation };
}
