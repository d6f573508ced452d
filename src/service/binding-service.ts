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
import { newRecordId } from '../core/record-id.js';
import {
  AffectedExchangeSchema,
  Direction,
  ReportWrongBindingResponseSchema,
  type ReportWrongBindingRequest,
  type ReportWrongBindingResponse,
} from '../gen/linkage/v1/gateway_pb.js';
import type { CallContext } from './call-context.js';
import { personNamedBy, type PersonDeps } from './person.js';
import type { RecordAppender, RecordReader } from './ports.js';
import { timeBound } from './time-bound.js';
import { bindingReportRecord } from './records-drafts.js';

/** Exchanges returned at most; `truncated` says when there were more. */
export const MAX_AFFECTED = 1000;

export interface BindingDeps extends PersonDeps {
  readonly writer: RecordAppender;
  readonly store: RecordReader;
}

export class BindingService {
  constructor(private readonly d: BindingDeps) {}

  async reportWrongBinding(req: ReportWrongBindingRequest, ctx: CallContext): Promise<ReportWrongBindingResponse> {
    // Only agencies that exchange information bind codes to local records.
    if (!ctx.agency.roles.has('requester') && !ctx.agency.roles.has('provider'))
      throw new GatewayError('PERMISSION_DENIED', `agency ${ctx.agency.id} does not exchange information and has no bindings to report`);
    const since = req.since ? timeBound(req.since, 'since') : null;
    const { subject } = await personNamedBy(this.d, ctx, req.code);
    // The report is durable first. The writer commits in order, so every exchange of this replica recorded
    // before the report is committed by then, and the list below includes it.
    const recordId = newRecordId();
    await this.d.writer.append(bindingReportRecord(recordId, subject, ctx.agency.id, Date.now()), ctx);
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
