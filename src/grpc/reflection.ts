/**
 * Server reflection (grpc.reflection.v1, and the same messages at v1alpha for older tools) served from the
 * protobuf-es descriptors the gateway is built from. @grpc/reflection works from proto-loader definitions and
 * loses imports of well-known types (grpc-node issue 2958: grpcurl then fails on google.protobuf.Timestamp);
 * the generated descriptors carry every dependency, so they are served as they are.
 *
 * Like every other service, it answers only callers with an agency certificate.
 */
import { create, createRegistry, toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { status, type Server } from '@grpc/grpc-js';
import { file_grpc_health_v1_health } from '../gen/grpc/health/v1/health_pb.js';
import {
  file_grpc_reflection_v1_reflection,
  ServerReflection,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from '../gen/grpc/reflection/v1/reflection_pb.js';
import { file_linkage_v1_gateway } from '../gen/linkage/v1/gateway_pb.js';
import { file_linkage_v1_records } from '../gen/linkage/v1/records_pb.js';
import type { BidiEnv } from './bidi-ordered.js';
import { implement } from './implement.js';

const SERVED_FILES = [file_linkage_v1_gateway, file_linkage_v1_records, file_grpc_health_v1_health, file_grpc_reflection_v1_reflection];

function withDependencies(files: readonly DescFile[]): Map<string, DescFile> {
  const out = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (out.has(f.proto.name)) return;
    out.set(f.proto.name, f);
    for (const d of f.dependencies) visit(d);
  };
  files.forEach(visit);
  return out;
}

export class ReflectionIndex {
  readonly #files = withDependencies(SERVED_FILES);
  readonly #registry = createRegistry(...this.#files.values());
  readonly #bytes = new Map<string, Uint8Array>();
  readonly services: string[];

  constructor(services: readonly string[]) {
    this.services = [...services];
  }

  #encoded(f: DescFile): Uint8Array {
    let b = this.#bytes.get(f.proto.name);
    if (!b) this.#bytes.set(f.proto.name, (b = toBinary(FileDescriptorProtoSchema, f.proto)));
    return b;
  }

  /** The file and all it imports, the file first. */
  #fileSet(f: DescFile): Uint8Array[] {
    return [...withDependencies([f]).values()].map((x) => this.#encoded(x));
  }

  #fileOfSymbol(symbol: string): DescFile | undefined {
    const d = this.#registry.get(symbol);
    if (d) return d.file;
    // A method: Package.Service.Method
    const i = symbol.lastIndexOf('.');
    const s = i > 0 ? this.#registry.getService(symbol.slice(0, i)) : undefined;
    return s?.methods.some((m) => m.name === symbol.slice(i + 1)) ? s.file : undefined;
  }

  answer(req: ServerReflectionRequest): ServerReflectionResponse {
    const base = { validHost: req.host, originalRequest: req };
    const notFound = (what: string) =>
      create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: 'errorResponse', value: { errorCode: status.NOT_FOUND, errorMessage: `${what} not found` } } });
    const files = (f: DescFile | undefined, what: string) =>
      f ? create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: 'fileDescriptorResponse', value: { fileDescriptorProto: this.#fileSet(f) } } }) : notFound(what);
    const m = req.messageRequest;
    switch (m.case) {
      case 'listServices':
        return create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: 'listServicesResponse', value: { service: this.services.map((name) => ({ name })) } } });
      case 'fileByFilename':
        return files(this.#files.get(m.value), 'file');
      case 'fileContainingSymbol':
        return files(this.#fileOfSymbol(m.value), 'symbol');
      case 'fileContainingExtension':
        return notFound('extension');
      case 'allExtensionNumbersOfType':
        return this.#registry.getMessage(m.value)
          ? create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: 'allExtensionNumbersResponse', value: { baseTypeName: m.value, extensionNumber: [] } } })
          : notFound('type');
      default:
        return create(ServerReflectionResponseSchema, { ...base, messageResponse: { case: 'errorResponse', value: { errorCode: status.INVALID_ARGUMENT, errorMessage: 'empty reflection request' } } });
    }
  }
}

export function addReflection(server: Server, env: BidiEnv, services: readonly string[]): void {
  const index = new ReflectionIndex([...services, 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']);
  const v1 = implement(ServerReflection, env, { serverReflectionInfo: () => (req: ServerReflectionRequest) => async () => index.answer(req) });
  server.addService(v1.definition, v1.implementation);
  // v1alpha has the same messages under another package: same handler, other path.
  const alpha = Object.fromEntries(Object.entries(v1.definition).map(([k, d]) => [k, { ...d, path: d.path.replace('grpc.reflection.v1.', 'grpc.reflection.v1alpha.') }]));
  server.addService(alpha, v1.implementation);
}
