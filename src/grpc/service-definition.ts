/**
 * grpc-js service definitions from protobuf-es descriptors, so the request path uses protobuf-es serializers.
 *
 * A request that does not parse becomes the `Malformed` marker instead of an exception: grpc-js would answer a
 * throwing deserializer with INTERNAL, and garbage from a client is INVALID_ARGUMENT. Handlers check for it.
 *
 * Bulk issuance stays in bytes on the event loop (docs/adr/0105-bulk-in-one-task.md): the server scans an
 * IssueCodesRequest (it is Malformed exactly when protobuf-es would refuse it) and hands it on undecoded, as a
 * `PackedIssueCodesRequest`; a response that comes already encoded (`PreEncoded`) is written as it is.
 */
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { scanIssueCodesRequest } from '../engine/issue-codes-wire.js';
import { IssueCodesRequestSchema } from '../gen/linkage/v1/gateway_pb.js';
import { isPreEncoded, PackedIssueCodesRequest } from '../service/bulk-messages.js';

export class Malformed {
  constructor(readonly typeName: string) {}
}

/** Encoded size of each request message as received, for the transport guard's byte budgets. */
const sizes = new WeakMap<object, number>();

/** The encoded size of a request message the server's deserializer made (0 for anything else). */
export function messageBytes(m: unknown): number {
  return typeof m === 'object' && m !== null ? (sizes.get(m) ?? 0) : 0;
}

function serializer<D extends DescMessage>(desc: D): (m: MessageShape<D>) => Buffer {
  return (m) => {
    const u8 = isPreEncoded(m) ? m.encoded : toBinary(desc, m);
    return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
  };
}

/** The server's IssueCodesRequest: scanned, not decoded. */
function packedIssueCodesDeserializer(b: Buffer): PackedIssueCodesRequest | Malformed {
  const count = scanIssueCodesRequest(b);
  const m = count < 0 ? new Malformed(IssueCodesRequestSchema.typeName) : new PackedIssueCodesRequest(b, count);
  sizes.set(m, b.length);
  return m;
}

function lenientDeserializer<D extends DescMessage>(desc: D): (b: Buffer) => MessageShape<D> | Malformed {
  return (b) => {
    let m: MessageShape<D> | Malformed;
    try {
      m = fromBinary(desc, b);
    } catch {
      m = new Malformed(desc.typeName);
    }
    sizes.set(m, b.length);
    return m;
  };
}

function strictDeserializer<D extends DescMessage>(desc: D): (b: Buffer) => MessageShape<D> {
  return (b) => fromBinary(desc, b);
}

/** The definition a server registers: requests may come back as `Malformed`. */
export function serverDefinition(service: DescService): ServiceDefinition {
  return build(service, true);
}

/** The definition a client uses (for makeGenericClientConstructor). */
export function clientDefinition(service: DescService): ServiceDefinition {
  return build(service, false);
}

function build(service: DescService, server: boolean): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
      responseStream: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      requestSerialize: serializer(m.input) as (v: unknown) => Buffer,
      requestDeserialize: server ? (m.input.typeName === IssueCodesRequestSchema.typeName ? packedIssueCodesDeserializer : lenientDeserializer(m.input)) : strictDeserializer(m.input),
      responseSerialize: serializer(m.output) as (v: unknown) => Buffer,
      responseDeserialize: strictDeserializer(m.output),
      originalName: m.localName,
    };
  }
  return def as ServiceDefinition;
}
