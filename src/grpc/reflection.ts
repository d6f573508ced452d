/**
 * Server reflection (grpcurl, grpcui, Postman) for the gateway's services. @grpc/reflection needs a
 * proto-loader package definition, so the .proto files are loaded here, once, for reflection only; the request
 * path never uses proto-loader.
 */
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { Server } from '@grpc/grpc-js';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../config/settings.js';

export function addReflection(server: Server): void {
  const protoDir = join(PACKAGE_ROOT, 'proto');
  const def = loadSync(['linkage/v1/gateway.proto', 'linkage/v1/records.proto', 'linkage/v1/provider.proto', healthProtoPath], {
    includeDirs: [protoDir],
    keepCase: true,
  });
  new ReflectionService(def, { services: ['linkage.v1.LinkageGateway', 'linkage.v1.AccessRecords', 'grpc.health.v1.Health'] }).addToServer(server);
}
