/**
 * Correcting a wrong binding (domain lesson of 2023: local records bound to the wrong person). An agency that
 * finds its code for a person attached to another person's local record reports it; the gateway records the
 * report (the person sees it through the disclosure system) and, once that record is durable, tells the agency
 * which exchanges since the wrong binding began released data about the person to it or from it, so that it
 * can tell those who received data about it.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { GatewayError } from '../core/errors.js';
import type { SubjectKeys } from '../core/subject-key.js';
import type { MappingEngine } from '../engine/mapping-engine.js';
import {
  AffectedExchangeSchema,
  Direction,
  ReportWrongBindingResponseSchema,
  type ReportWrongBindingRequest,
  type ReportWrongBindingResponse,
} from '../gen/linkage/v1/gateway_pb.js';
import { throwIfDone, type CallContext } from '../grpc/call-context.js';
import type { RecordStore } from '../records/record-store.js';
import { newRecordId, type RecordWriter } from '../records/record-writer.js';
import { timeBound } from './time-bound.js';
import { bindingReportRecord } from './records-drafts.js';

/** Exchanges returned at most; `truncated` says when there were more. */
export const MAX_AFFECTED = 1000;

export interface BindingDeps {
  readonly engine: MappingEngine;
  readonly subjects: SubjectKeys;
  readonly writer: RecordWriter;
  readonly store: RecordStore;
}

export class BindingService {
  constructor(private readonly d: BindingDeps) {}

  async reportWrongBinding(req: ReportWrongBindingRequest, ctx: CallContext): Promise<ReportWrongBindingResponse> {
    // Only agencies that exchange information bind codes to local records.
    if (!ctx.agency.roles.has('requester') && !ctx.agency.roles.has('provider'))
      throw new GatewayError('PERMISSION_DENIED', `agency ${ctx.agency.id} does not exchange information and has no bindings to report`);
    if (!req.code) throw new GatewayError('INVALID_ARGUMENT', 'code: the caller\'s code whose binding was wrong is required');
    const since = req.since ? timeBound(req.since, 'since') : null;
    throwIfDone(ctx);
    const [decoded] = await this.d.engine.decode(ctx.agency.id, [req.code], ctx.signal);
    if (!decoded?.ok) throw new GatewayError('INVALID_ARGUMENT', 'code: not a valid code of the calling agency');
    const subject = this.d.subjects.of(decoded.number);
    // The report is durable first. The writer commits in order, so every exchange of this replica recorded
    // before the report is committed by then, and the list below includes it.
    const recordId = newRecordId();
    await this.d.writer.append(bindingReportRecord(recordId, subject, ctx.agency.id, Date.now()));
    let rows;
    try {
      rows = await this.d.store.exchangesOf({ subject, agency: ctx.agency.id, since, limit: MAX_AFFECTED + 1 });
    } catch (err) {
      throw new GatewayError('UNAVAILABLE', 'the access record store is unavailable', { cause: err });
    }
    const affected = rows.slice(0, MAX_AFFECTED).map((r) =>
      create(AffectedExchangeSchema, {
        recordId: r.recordId,
        requestedAt: timestampFromMs(r.requestedAt),
        requester: r.requester,
        provider: r.provider,
        procedure: r.procedure,
        item: r.item,
        direction: r.provider === ctx.agency.id ? Direction.SENT : Direction.RECEIVED,
      }),
    );
    return create(ReportWrongBindingResponseSchema, { recordId, affected, truncated: rows.length > MAX_AFFECTED });
  }
}
