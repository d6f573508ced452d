/** A grpc-js client for a protobuf-es service, with promise-returning unary calls. */
import { makeGenericClientConstructor, Metadata, type ChannelCredentials, type ChannelOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import type { DescMethodUnary, DescService, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { create } from '@bufbuild/protobuf';
import { clientDefinition } from './service-definition.js';

export function makeClient(service: DescService, address: string, creds: ChannelCredentials, options: ChannelOptions = {}): Client {
  const Ctor = makeGenericClientConstructor(clientDefinition(service), service.name);
  return new Ctor(address, creds, options);
}

export function callUnary<M extends DescMethodUnary>(
  client: Client,
  method: M,
  req: MessageInitShape<M['input']>,
  opts: { deadline?: number; metadata?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<MessageShape<M['output']>> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
  const fn = (client as unknown as Record<string, Function>)[method.localName]!;
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    // Cancelled (CANCELLED) when the signal aborts: the caller's own caller went away.
    const onAbort = () => call.cancel();
    const call = fn.call(
      client,
      create(method.input, req),
      md,
      opts.deadline !== undefined && Number.isFinite(opts.deadline) ? { deadline: opts.deadline } : {},
      (err: ServiceError | null, res: MessageShape<M['output']>) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res);
      },
    ) as { cancel(): void };
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
