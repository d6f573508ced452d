/**
 * Idempotent QueryInformation: a retry that carries the same `x-request-id` within the window gets the first
 * attempt's outcome (the same payload and record id, or the same refusal) instead of a second exchange and a
 * second record. Only final outcomes are kept: success, PERMISSION_DENIED and NOT_FOUND. Failures that a
 * retry may cure (provider down, record store down, deadlines) are forgotten so the retry runs again.
 *
 * The outcome is bound to the request: reusing an id for a different query is refused, never answered with
 * another query's data. Outcomes are sealed by the store (they may hold provider payloads). While the first
 * attempt runs, retries are refused with ABORTED, at most until that attempt's deadline.
 */
import { createHash } from 'node:crypto';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { GatewayError, type ErrorCode } from '../core/errors.js';
import { QueryInformationRequestSchema, QueryInformationResponseSchema, type QueryInformationRequest, type QueryInformationResponse } from '../gen/linkage/v1/gateway_pb.js';
import type { IdempotencyStore } from '../idempotency/idempotency-store.js';

const FORMAT = 1;
const FINAL: ReadonlySet<ErrorCode> = new Set(['PERMISSION_DENIED', 'NOT_FOUND']);

export interface IdempotencyObserver {
  replayed(agency: string): void;
}

function digest(req: QueryInformationRequest): Buffer {
  return createHash('sha256').update(toBinary(QueryInformationRequestSchema, req)).digest();
}

function encode(d: Buffer, outcome: { ok: QueryInformationResponse } | { err: GatewayError }): Uint8Array {
  const body = 'ok' in outcome
    ? Buffer.from(toBinary(QueryInformationResponseSchema, outcome.ok))
    : Buffer.from(JSON.stringify({ code: outcome.err.code, message: outcome.err.message, details: outcome.err.details }));
  return Buffer.concat([Buffer.from([FORMAT, 'ok' in outcome ? 0 : 1]), d, body]);
}

function decode(d: Buffer, b: Uint8Array): QueryInformationResponse {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 34 || buf[0] !== FORMAT) throw new GatewayError('UNAVAILABLE', 'the first attempt of this request cannot be replayed; retry with a new x-request-id');
  if (!buf.subarray(2, 34).equals(d)) throw new GatewayError('INVALID_ARGUMENT', 'x-request-id was already used for a different request');
  const body = buf.subarray(34);
  if (buf[1] === 0) return fromBinary(QueryInformationResponseSchema, body);
  const e = JSON.parse(body.toString('utf8')) as { code: ErrorCode; message: string; details: Record<string, string> };
  throw new GatewayError(e.code, e.message, { details: e.details });
}

export class IdempotentQueries {
  constructor(
    private readonly store: IdempotencyStore,
    private readonly observer?: IdempotencyObserver,
  ) {}

  /** `deadline`: when this attempt ends at the latest (ms since the epoch); its retries wait no longer. */
  async run(agency: string, requestId: string, req: QueryInformationRequest, exec: () => Promise<QueryInformationResponse>, deadline = Number.POSITIVE_INFINITY): Promise<QueryInformationResponse> {
    const d = digest(req);
    const b = await this.store.begin(agency, requestId, deadline);
    if (b.kind === 'replay') {
      this.observer?.replayed(agency);
      return decode(d, b.outcome);
    }
    if (b.kind === 'in-progress')
      throw new GatewayError('ABORTED', 'a request with this x-request-id is still in progress; retry when it has ended', { details: { 'retry-after-ms': '200' } });
    try {
      const res = await exec();
      await this.store.complete(b.token, encode(d, { ok: res }));
      return res;
    } catch (e) {
      if (e instanceof GatewayError && FINAL.has(e.code)) await this.store.complete(b.token, encode(d, { err: e }));
      else await this.store.abandon(b.token);
      throw e;
    }
  }
}
