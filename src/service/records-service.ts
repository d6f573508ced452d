/**
 * AccessRecords: the disclosure system reads the records about one person, named by its own code. Only an
 * agency with the `disclosure` role may call it, it can only ever name a person through a code that the
 * gateway issued to it, and non-disclosable records are left out. The read is itself recorded, durably,
 * before any record is sent.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { LoggedRecord } from '../core/access-record.js';
import { GatewayError } from '../core/errors.js';
import type { SubjectKeys } from '../core/subject-key.js';
import type { MappingEngine } from '../engine/mapping-engine.js';
import { AccessRecordSchema, type AccessRecord, type ListAccessRecordsRequest } from '../gen/linkage/v1/records_pb.js';
import { throwIfDone, type CallContext } from '../grpc/call-context.js';
import { requireRole } from '../grpc/identity.js';
import type { RecordCursor, RecordStore } from '../records/record-store.js';
import { newRecordId, type RecordWriter } from '../records/record-writer.js';
import { recordsReadRecord } from './records-drafts.js';
import { timeBound } from './time-bound.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface RecordsDeps {
  readonly engine: MappingEngine;
  readonly subjects: SubjectKeys;
  readonly writer: RecordWriter;
  readonly store: RecordStore;
}

export function encodeCursor(r: RecordCursor): string {
  // The log id goes last: replica ids may contain dots.
  return Buffer.from(`${r.requestedAt}:${r.leafIndex}:${r.logId}`).toString('base64url');
}

export function decodeCursor(s: string): RecordCursor {
  const m = /^(\d{1,16}):(\d{1,16}):([A-Za-z0-9._-]{1,64})$/.exec(Buffer.from(s, 'base64url').toString('utf8'));
  if (!m) throw new GatewayError('INVALID_ARGUMENT', 'page_token: not a cursor this service returned');
  return { requestedAt: Number(m[1]), leafIndex: Number(m[2]), logId: m[3]! };
}

export class RecordsService {
  constructor(private readonly d: RecordsDeps) {}

  async list(req: ListAccessRecordsRequest, ctx: CallContext, write: (r: AccessRecord) => Promise<void>): Promise<void> {
    requireRole(ctx.agency, 'disclosure', 'read access records');
    if (!req.code) throw new GatewayError('INVALID_ARGUMENT', 'code: the disclosure system\'s code for the person is required');
    const limit = req.pageSize === 0 ? DEFAULT_PAGE : Math.min(req.pageSize, MAX_PAGE);
    const after = req.pageToken ? decodeCursor(req.pageToken) : null;
    const from = req.from ? timeBound(req.from, 'from') : null;
    const to = req.to ? timeBound(req.to, 'to') : null;
    if (from !== null && to !== null && from >= to) throw new GatewayError('INVALID_ARGUMENT', 'from must be before to');
    throwIfDone(ctx);
    const [decoded] = await this.d.engine.decode(ctx.agency.id, [req.code], ctx.signal);
    if (!decoded?.ok) throw new GatewayError('INVALID_ARGUMENT', 'code: not a valid code of the calling agency');
    const subject = this.d.subjects.of(decoded.number);
    let rows: LoggedRecord[];
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
