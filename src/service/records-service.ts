/**
 * AccessRecords: the disclosure system reads the records about one person, named by its own code. Only an
 * agency with the `disclosure` role may list them, it can only ever name a person through a code that the
 * gateway issued to it, and non-disclosable records are left out. The read is itself recorded, durably,
 * before any record is sent.
 *
 * Every record comes with its inclusion proof at its log's latest checkpoint (docs/transparency.md). Any
 * agency may read the checkpoints and consistency proofs (they name no one); a record's proof by its id goes
 * to the record's requester and provider (their §23 copy) and to the disclosure agency, and to no one else.
 */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { LoggedRecord } from '../core/access-record.js';
import { GatewayError } from '../core/errors.js';
import { newRecordId } from '../core/record-id.js';
import type { Listing, PageTokens } from '../core/page-token.js';
import {
  AccessRecordSchema,
  CheckpointSchema,
  ConsistencyProofSchema,
  GetCheckpointsResponseSchema,
  InclusionProofSchema,
  RecordProofSchema,
  type AccessRecord,
  type ConsistencyProof,
  type GetCheckpointsResponse,
  type GetConsistencyProofRequest,
  type GetRecordProofRequest,
  type InclusionProof,
  type ListAccessRecordsRequest,
  type RecordProof,
} from '../gen/linkage/v1/records_pb.js';
import type { RecordInclusion } from '../records/log-proofs.js';
import type { RecordCursor } from '../records/record-store.js';
import { requireRole, throwIfDone, type CallContext } from './call-context.js';
import { personNamedBy, type PersonDeps } from './person.js';
import type { RecordAppender, RecordProofs, RecordReader } from './ports.js';
import { recordsReadRecord } from './records-drafts.js';
import { timeBound } from './time-bound.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface RecordsDeps extends PersonDeps {
  readonly writer: RecordAppender;
  readonly store: RecordReader;
  readonly proofs: RecordProofs;
  /** Authenticates ListAccessRecords page tokens (under a key derived from the keyring's subject secret). */
  readonly pageTokens: PageTokens;
}

/**
 * Where a listing goes on, from its page token: only a token this gateway issued to this agency for this person
 * opens (src/core/page-token.ts). An edited one, or one of another person's listing, is INVALID_ARGUMENT: the
 * subject is in the token's MAC, so another listing's token is refused rather than read as a position in this
 * one (it could only ever have returned this person's records, but a caller mixing listings has a bug to see).
 */
function pagePosition(tokens: PageTokens, token: string, listing: Listing): RecordCursor {
  const p = tokens.open(token, listing);
  if (!p) throw new GatewayError('INVALID_ARGUMENT', 'page_token: not a page token of this listing (edited, or from another agency or person)');
  return p;
}

/** What a caller learns about a record it may not see, or one that does not exist: the same. */
const NO_SUCH_RECORD = 'no access record with that id that this agency may read';

function inclusionMessage(p: RecordInclusion): InclusionProof {
  return create(InclusionProofSchema, {
    origin: p.origin,
    leafIndex: BigInt(p.leafIndex),
    treeSize: BigInt(p.treeSize),
    hashes: p.hashes,
    leafHash: p.leafHash,
    checkpoint: p.checkpoint,
    leaf: p.leaf,
  });
}

/** `cursor`: the record's page token in a listing; a record read by its id has none. */
function recordMessage(r: LoggedRecord, proof: RecordInclusion | null, cursor = ''): AccessRecord {
  return create(AccessRecordSchema, {
    recordId: r.recordId,
    requestedAt: timestampFromMs(r.requestedAt),
    ...(r.providedAt !== null ? { providedAt: timestampFromMs(r.providedAt) } : {}),
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    legalBasisRow: r.legalBasisRow,
    item: r.item,
    outcome: r.outcome,
    cursor,
    ...(proof ? { proof: inclusionMessage(proof) } : {}),
    ...(r.correctsRecordId ? { correctsRecordId: r.correctsRecordId } : {}),
  });
}

function size(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GatewayError('INVALID_ARGUMENT', `${what}: larger than any log`);
  return Number(v);
}

async function fromStore<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new GatewayError('UNAVAILABLE', 'the access record store is unavailable', { cause: err });
  }
}

export class RecordsService {
  constructor(private readonly d: RecordsDeps) {}

  /** GetCheckpoints: the latest checkpoint of every log, cosigned. */
  async checkpoints(ctx: CallContext): Promise<GetCheckpointsResponse> {
    throwIfDone(ctx);
    const latest = await fromStore(this.d.proofs.latest());
    return create(GetCheckpointsResponseSchema, { checkpoints: latest.map((c) => create(CheckpointSchema, { origin: c.origin, signedNote: c.note })) });
  }

  /** GetConsistencyProof between two sizes of a log, both at most its latest checkpoint's. */
  async consistencyProof(req: GetConsistencyProofRequest, ctx: CallContext): Promise<ConsistencyProof> {
    if (!req.origin) throw new GatewayError('INVALID_ARGUMENT', 'origin: the log is required');
    const oldSize = size(req.oldSize, 'old_size');
    const newSize = size(req.newSize, 'new_size');
    if (oldSize > newSize) throw new GatewayError('INVALID_ARGUMENT', 'old_size must not be larger than new_size');
    throwIfDone(ctx);
    const latest = (await fromStore(this.d.proofs.latest())).find((c) => c.origin === req.origin);
    if (!latest) throw new GatewayError('NOT_FOUND', 'no log with that origin has a checkpoint');
    if (newSize > latest.size) throw new GatewayError('INVALID_ARGUMENT', `new_size: the latest checkpoint of that log has ${latest.size} leaves`);
    return create(ConsistencyProofSchema, { hashes: await fromStore(this.d.proofs.consistency(latest.logId, oldSize, newSize)) });
  }

  /** GetRecordProof: a record and its proof, for its parties and the disclosure agency only. */
  async recordProof(req: GetRecordProofRequest, ctx: CallContext): Promise<RecordProof> {
    if (!/^[0-9A-Z]{24}$/.test(req.recordId)) throw new GatewayError('NOT_FOUND', NO_SUCH_RECORD);
    throwIfDone(ctx);
    const r = await fromStore(this.d.store.recordById(req.recordId));
    const me = ctx.agency.id;
    const party = r !== null && (r.requester === me || r.provider === me);
    const discloser = r !== null && ctx.agency.roles.has('disclosure') && !r.nonDisclosable;
    if (!r || !(party || discloser)) throw new GatewayError('NOT_FOUND', NO_SUCH_RECORD);
    const [proof] = await fromStore(this.d.proofs.ofRecords([r]));
    return create(RecordProofSchema, { record: recordMessage(r, proof ?? null), ...(proof ? { proof: inclusionMessage(proof) } : {}) });
  }

  async list(req: ListAccessRecordsRequest, ctx: CallContext, write: (r: AccessRecord) => Promise<void>): Promise<void> {
    requireRole(ctx.agency, 'disclosure', 'read access records');
    const limit = req.pageSize === 0 ? DEFAULT_PAGE : Math.min(req.pageSize, MAX_PAGE);
    const from = req.from ? timeBound(req.from, 'from') : null;
    const to = req.to ? timeBound(req.to, 'to') : null;
    if (from !== null && to !== null && from >= to) throw new GatewayError('INVALID_ARGUMENT', 'from must be before to');
    const { subject } = await personNamedBy(this.d, ctx, req.code);
    const listing: Listing = { agency: ctx.agency.id, subject };
    const after = req.pageToken ? pagePosition(this.d.pageTokens, req.pageToken, listing) : null;
    let rows: LoggedRecord[];
    try {
      rows = await this.d.store.listBySubject({ subject, from, to, after, limit });
    } catch (err) {
      throw new GatewayError('UNAVAILABLE', 'the access record store is unavailable', { cause: err });
    }
    const proofs = await fromStore(this.d.proofs.ofRecords(rows));
    await this.d.writer.append(recordsReadRecord(newRecordId(), subject, ctx.agency.id, Date.now()), ctx);
    for (const [i, r] of rows.entries()) {
      throwIfDone(ctx);
      await write(recordMessage(r, proofs[i] ?? null, this.d.pageTokens.issue(r, listing)));
    }
  }
}
