/**
 * AccessRecords: the disclosure system reads the records about one person, named by its own code. Only an
 * agency with the `disclosure` role may call it, it can only ever name a person through a code that the
 * gateway issued to it, and non-disclosable records are left out. The read is itself recorded, durably,
 * before any record is sent.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ChainedRecord } from '../core/access-record.js';
import { GatewayError } from '../core/errors.js';
import { newRecordId } from '../core/record-id.js';
import { AccessRecordSchema, type AccessRecord, type ListAccessRecordsRequest } from '../gen/linkage/v1/records_pb.js';
import type { RecordCursor } from '../records/record-store.js';
import { requireRole, throwIfDone, type CallContext } from './call-context.js';
import { personNamedBy, type PersonDeps } from './person.js';
import type { RecordAppender, RecordReader } from './ports.js';
import { recordsReadRecord } from './records-drafts.js';
import { timeBound } from './time-bound.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface RecordsDeps extends PersonDeps {
  readonly writer: RecordAppender;
  readonly store: RecordReader;
}

export function encodeCursor(r: RecordCursor): string {
  return Buffer.from(`${r.requestedAt}.${r.chainId}.${r.seq}`).toString('base64url');
}

export function decodeCursor(s: string): RecordCursor {
  const m = /^(\d{1,16})\.([a-z0-9]{1,40})\.(\d{1,16})$/.exec(Buffer.from(s, 'base64url').toString('utf8'));
  if (!m) throw new GatewayError('INVALID_ARGUMENT', 'page_token: not a cursor this service returned');
  return { requestedAt: Number(m[1]), chainId: m[2]!, seq: Number(m[3]) };
}

export class RecordsService {
  constructor(private readonly d: RecordsDeps) {}

  async list(req: ListAccessRecordsRequest, ctx: CallContext, write: (r: AccessRecord) => Promise<void>): Promise<void> {
    requireRole(ctx.agency, 'disclosure', 'read access records');
    const limit = req.pageSize === 0 ? DEFAULT_PAGE : Math.min(req.pageSize, MAX_PAGE);
    const after = req.pageToken ? decodeCursor(req.pageToken) : null;
    const from = req.from ? timeBound(req.from, 'from') : null;
    const to = req.to ? timeBound(req.to, 'to') : null;
    if (from !== null && to !== null && from >= to) throw new GatewayError('INVALID_ARGUMENT', 'from must be before to');
    const { subject } = await personNamedBy(this.d, ctx, req.code);
    let rows: ChainedRecord[];
    try {
      rows = await this.d.store.listBySubject({ subject, from, to, after, limit });
    } catch (err) {
      throw new GatewayError('UNAVAILABLE', 'the access record store is unavailable', { cause: err });
    }
    await this.d.writer.append(recordsReadRecord(newRecordId(), subject, ctx.agency.id, Date.now()));
    for (const r of rows) {
      throwIfDone(ctx);
      await write(
        create(AccessRecordSchema, {
          recordId: r.recordId,
          requestedAt: timestampFromMs(r.requestedAt),
          ...(r.providedAt !== null ? { providedAt: timestampFromMs(r.providedAt) } : {}),
          requester: r.requester,
          provider: r.provider,
          procedure: r.procedure,
          legalBasisRow: r.legalBasisRow,
          item: r.item,
          outcome: r.outcome,
          cursor: encodeCursor(r),
        }),
      );
    }
  }
}
