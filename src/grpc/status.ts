/**
 * The one place where gateway errors become gRPC statuses. An error that is not a GatewayError is a bug or an
 * unmapped failure: it becomes INTERNAL with a fixed message, and its text stays in the log.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { GatewayError, type ErrorCode } from '../core/errors.js';

const CODES: Record<ErrorCode, status> = {
  CANCELLED: status.CANCELLED,
  ABORTED: status.ABORTED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  NOT_FOUND: status.NOT_FOUND,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  INTERNAL: status.INTERNAL,
  UNAVAILABLE: status.UNAVAILABLE,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
};

export function toServiceError(e: unknown): Partial<ServiceError> & { code: status; details: string } {
  const metadata = new Metadata();
  if (e instanceof GatewayError) {
    for (const [k, v] of Object.entries(e.details)) metadata.set(k, v);
    return { code: CODES[e.code], details: e.message, message: e.message, metadata };
  }
  return { code: status.INTERNAL, details: 'internal error', message: 'internal error', metadata };
}

/** The name of a numeric status, for metric labels and logs. */
export function statusName(code: number): string {
  return status[code] ?? 'UNKNOWN';
}
