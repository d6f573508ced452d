/**
 * LinkageGateway: code issuance (single and bulk) and relayed information queries. Each method composes the
 * modules (engine, policy, providers, records) and holds no logic of its own beyond the order of the steps:
 * identity → input → policy → mapping → provider → record → response.
 */
import { create } from '@bufbuild/protobuf';
import { Outcome } from '../core/access-record.js';
import { decide, mayQuery, namesNonDisclosable, type Decision } from '../core/legal-basis.js';
import { GatewayError } from '../core/errors.js';
import type { SubjectKeys } from '../core/subject-key.js';
import type { PolicySnapshot } from '../config/policy.js';
import type { MappingEngine } from '../engine/mapping-engine.js';
import {
  IssueCodeResponseSchema,
  IssueCodesResponseSchema,
  IssueCodeResultSchema,
  QueryInformationResponseSchema,
  type IssueCodeRequest,
  type IssueCodeResponse,
  type IssueCodesRequest,
  type IssueCodesResponse,
  type QueryInformationRequest,
  type QueryInformationResponse,
} from '../gen/linkage/v1/gateway_pb.js';
import { notify } from '../core/observer.js';
import { remaining, throwIfDone, type CallContext } from './call-context.js';
import { newRecordId } from '../core/record-id.js';
import type { ProvideResult, Providers, RecordAppender } from './ports.js';
import { parsePersonalNumber, personalNumberProblem } from './personal-number-input.js';
import { personNamedBy } from './person.js';
import { bulkIssuanceRecord, issuanceRecord, queryRecord, UNLISTED, UNREGISTERED, type QueryFacts } from './records-drafts.js';
import { checkPersonalNumber } from '../core/personal-number.js';
import { runOf } from '../core/persons-run.js';
import { EncodedIssueCodesResponse, numberCount, PackedIssueCodesRequest } from './bulk-messages.js';
import type { IdempotentQueries } from './idempotent-query.js';

export const MAX_BATCH = 10_000;

export interface ProviderCallObserver {
  providerCall(provider: string, outcome: string, seconds: number): void;
}

export interface GatewayDeps {
  readonly engine: MappingEngine;
  readonly subjects: SubjectKeys;
  readonly writer: RecordAppender;
  policy(): PolicySnapshot;
  readonly providers: Providers;
  /** Upper bound on the time given to a provider, ms. */
  readonly providerTimeoutMs: number;
  readonly observer?: ProviderCallObserver;
  /** Replays retried queries (same x-request-id) instead of exchanging twice. */
  readonly idempotent?: IdempotentQueries;
  /** Paces bulk issuance by numbers per second (LINKGW_RATE_LIMIT_BULK). */
  readonly bulkPacer?: BulkPacer;
}

/** Holds a bulk message until the agency's bulk rate has room for its numbers. */
export interface BulkPacer {
  pace(agency: string, count: number, signal: AbortSignal): Promise<void>;
}

const NAME = /^[a-z][a-z0-9.-]{0,63}$/;

function requireName(v: string, field: string): void {
  if (!NAME.test(v)) throw new GatewayError('INVALID_ARGUMENT', `${field}: lower-case letters, digits, dots and hyphens, 1 to 64 characters`);
}

export class GatewayService {
  constructor(private readonly d: GatewayDeps) {}

  async issueCode(req: IssueCodeRequest, ctx: CallContext): Promise<IssueCodeResponse> {
    const value = parsePersonalNumber(req.personalNumber);
    throwIfDone(ctx);
    const [code] = await this.d.engine.issue(ctx.agency.id, [value], ctx.signal);
    const recordId = newRecordId();
    await this.d.writer.append(issuanceRecord(recordId, this.d.subjects.of(value), ctx.agency.id, Date.now()), ctx);
    return create(IssueCodeResponseSchema, { code: code!, recordId });
  }

  /**
   * One batch of a bulk issuance stream; `offset` is the stream index of its first item. With an engine that
   * issues whole messages (`issueBulk`), the batch is one task: numbers, codes, the record's persons and the
   * encoded response, without an object per number here (docs/adr/0105-bulk-in-one-task.md).
   */
  async issueBatch(req: IssueCodesRequest, ctx: CallContext, offset: number): Promise<IssueCodesResponse> {
    const count = numberCount(req);
    if (count > MAX_BATCH) throw new GatewayError('INVALID_ARGUMENT', `at most ${MAX_BATCH} numbers a message`);
    throwIfDone(ctx);
    const issueBulk = this.d.engine.issueBulk;
    if (!issueBulk) return this.#issueBatchByItem(req, ctx, offset);
    const recordId = newRecordId();
    const numbers = req instanceof PackedIssueCodesRequest ? { bytes: req.bytes, count } : { strings: req.personalNumbers };
    const r = await issueBulk({ agency: ctx.agency.id, recordId, offset, numbers }, ctx.signal);
    if (r.issued > 0) {
      // The persons as one sorted run, and its commitment, both made on the worker with the codes (ADR 0104, 0105).
      await this.d.writer.append(bulkIssuanceRecord(recordId, r.run, ctx.agency.id, Date.now(), Buffer.from(r.commitment.buffer, r.commitment.byteOffset, r.commitment.byteLength)), ctx);
    }
    return new EncodedIssueCodesResponse(r.response);
  }

  /** A batch item by item, for engines without `issueBulk` (built without the subject secret). */
  async #issueBatchByItem(req: IssueCodesRequest, ctx: CallContext, offset: number): Promise<IssueCodesResponse> {
    const numbers = req.personalNumbers;
    const values: number[] = [];
    const at: number[] = [];
    const results = numbers.map((s, i) => {
      const c = checkPersonalNumber(s);
      if (c.ok) {
        values.push(c.value);
        at.push(i);
        return create(IssueCodeResultSchema, {});
      }
      return create(IssueCodeResultSchema, { status: 3, error: personalNumberProblem(s)! });
    });
    let recordId = '';
    if (values.length > 0) {
      const codes = await this.d.engine.issue(ctx.agency.id, values, ctx.signal);
      recordId = newRecordId();
      // A person named twice in one message is one person of the record: the run keeps each key once.
      await this.d.writer.append(bulkIssuanceRecord(recordId, runOf(this.d.subjects.rawMany(values)), ctx.agency.id, Date.now()), ctx);
      for (let j = 0; j < at.length; j++) results[at[j]!]!.code = codes[j]!;
    }
    return create(IssueCodesResponseSchema, { offset: BigInt(offset), results, recordId });
  }

  /**
   * The handler of one IssueCodes stream: called for each message in arrival order, it takes the message's
   * offset at once and returns the work, which runs once the message is admitted.
   */
  issueStream(ctx: CallContext): (req: IssueCodesRequest) => () => Promise<IssueCodesResponse> {
    let offset = 0;
    return (req) => {
      const at = offset;
      const count = numberCount(req);
      offset += count;
      return async () => {
        await this.d.bulkPacer?.pace(ctx.agency.id, Math.min(count, MAX_BATCH), ctx.signal);
        return this.issueBatch(req, ctx, at);
      };
    };
  }

  queryInformation(req: QueryInformationRequest, ctx: CallContext): Promise<QueryInformationResponse> {
    if (this.d.idempotent && ctx.requestId) return this.d.idempotent.run(ctx.agency.id, ctx.requestId, req, () => this.#query(req, ctx), ctx.deadline);
    return this.#query(req, ctx);
  }

  async #query(req: QueryInformationRequest, ctx: CallContext): Promise<QueryInformationResponse> {
    requireName(req.provider, 'provider');
    requireName(req.procedure, 'procedure');
    requireName(req.item, 'item');
    const person = await personNamedBy(this.d, ctx, req.code);
    const { registry, table } = this.d.policy();
    const recordId = newRecordId();
    const provider = registry.agencies.get(req.provider);
    const facts: QueryFacts = {
      recordId,
      subject: person.subject,
      requestedAt: Date.now(),
      requester: ctx.agency.id,
      provider: provider ? provider.id : UNREGISTERED,
      procedure: table.procedures.has(req.procedure) ? req.procedure : UNLISTED,
      item: table.items.has(req.item) ? req.item : UNLISTED,
      nonDisclosable: namesNonDisclosable(table, req.procedure, req.item),
    };
    // An agency without the requester role is refused like a query without legal basis, and recorded too:
    // it named a person. The disclosure agency queries only for self-information display (its rows only).
    if (!mayQuery(ctx.agency.roles, req.procedure)) {
      await this.d.writer.append(queryRecord(facts, Outcome.DENIED, undefined), ctx);
      throw new GatewayError('PERMISSION_DENIED', `agency ${ctx.agency.id} may not query information${ctx.agency.roles.has('disclosure') ? ' except for self-information display' : ''}`);
    }
    const decision: Decision = provider?.roles.has('provider') && provider.providerAddress
      ? decide(table, { requester: ctx.agency.id, procedure: req.procedure, provider: provider.id, item: req.item })
      : { allowed: false, reason: 'no-row' };
    if (!decision.allowed) {
      await this.d.writer.append(queryRecord(facts, Outcome.DENIED, decision.row), ctx);
      throw new GatewayError('PERMISSION_DENIED', 'no legal basis for this requester, procedure, provider and item');
    }
    const row = decision.row;
    const [providerCode] = await this.d.engine.issue(provider!.id, [person.number], ctx.signal);
    const started = process.hrtime.bigint();
    // The provider call's span, beside its metric: its traceparent is the one the provider receives.
    const span = ctx.trace?.startProviderCall(provider!.id);
    const result: ProvideResult = await this.d.providers.provide({
      provider: provider!.id,
      address: provider!.providerAddress!,
      peer: { commonName: provider!.certificateCommonName },
      code: providerCode!,
      requester: ctx.agency.id,
      procedure: req.procedure,
      item: req.item,
      recordId,
      legalBasisRow: row.id,
      deadline: Date.now() + remaining(ctx, this.d.providerTimeoutMs),
      signal: ctx.signal,
      ...(span ? { trace: span } : {}),
    });
    span?.end(result);
    // A query refused before any call was made is no provider call (it is counted in linkgw_refusals_total).
    if (result.kind !== 'refused')
      notify(this.d.observer, (o) => o.providerCall(provider!.id, result.kind === 'failed' ? result.code.toLowerCase() : result.kind, Number(process.hrtime.bigint() - started) / 1e9));
    switch (result.kind) {
      case 'provided':
        // The provider has answered: the record is kept even if the caller is gone by now (then NOT_RELEASED follows).
        await this.d.writer.append(queryRecord(facts, Outcome.PROVIDED, row, Date.now()), { trace: ctx.trace, signal: ctx.signal, exchanged: true });
        return create(QueryInformationResponseSchema, { payload: result.payload, contentType: result.contentType, recordId, legalBasisRow: row.id });
      case 'not-found':
        // The provider was asked: recorded whatever the caller does (there is no answer to hold back).
        await this.d.writer.append(queryRecord(facts, Outcome.NOT_FOUND, row), { trace: ctx.trace });
        throw new GatewayError('NOT_FOUND', 'the provider has no information about this person', { details: { 'x-record-id': recordId } });
      case 'failed':
        await this.d.writer.append(queryRecord(facts, Outcome.FAILED, row), { trace: ctx.trace });
        if (result.code === 'DEADLINE_EXCEEDED') throw new GatewayError('DEADLINE_EXCEEDED', 'the provider did not answer in time', { details: { 'x-record-id': recordId } });
        if (result.code === 'UNAVAILABLE') throw new GatewayError('UNAVAILABLE', 'the provider is unavailable', { details: { 'x-record-id': recordId } });
        throw new GatewayError('UNAVAILABLE', 'the provider failed to answer', { details: { 'x-record-id': recordId } });
      case 'refused': {
        // Not sent to the provider, but the query named a person and had a legal basis: it is recorded as failed,
        // like a provider that cannot be reached.
        await this.d.writer.append(queryRecord(facts, Outcome.FAILED, row), ctx);
        const details = { 'retry-after-ms': String(result.retryAfterMs), 'x-record-id': recordId };
        if (result.reason === 'busy') throw new GatewayError('RESOURCE_EXHAUSTED', 'the provider has as many queries in progress as the gateway lets it have; retry shortly', { details });
        throw new GatewayError('UNAVAILABLE', 'the provider is not answering; queries to it fail at once until it answers again', { details });
      }
    }
  }
}
