/**
 * One error class for everything the gateway answers with, with a closed set of codes that mirror gRPC's.
 * The message is what the client sees: it must never name personal data. The original error, if any, rides
 * along as `cause` for logs and never reaches the client. The gRPC adapter maps codes to statuses.
 */

export type ErrorCode =
  | 'CANCELLED'
  | 'ABORTED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED';

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  /** Extra response metadata (for example a retry hint), ASCII keys and values only. */
  readonly details: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, string> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details ?? {};
  }
}
