/**
 * The services over fakes of their ports (record appender, record reader, providers): the order of the steps
 * and what each records, without a server. The mapping engine is the real inline one over a fresh keyring.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Outcome, type AccessRecordDraft, type LoggedRecord } from '../../src/core/access-record.js';
import { parseAgencyRegistry } from '../../src/core/agency-registry.js';
import { GatewayError } from '../../src/core/errors.js';
import { parseLegalBasisTable } from '../../src/core/legal-basis.js';
import { SubjectKeys } from '../../src/core/subject-key.js';
import { PageTokens } from '../../src/core/page-token.js';
import { InlineEngine } from '../../src/engine/mapping-engine.js';
import { silentLogger } from '../../src/log/logger.js';
import { BindingService } from '../../src/service/binding-service.js';
import type { CallContext } from '../../src/service/call-context.js';
import { GatewayService } from '../../src/service/gateway-service.js';
import type { ProvideCall, ProvideResult, RecordProofs, RecordReader } from '../../src/service/ports.js';
import { RecordsService } from '../../src/service/records-service.js';
import { UNLISTED, UNREGISTERED } from '../../src/service/records-drafts.js';

const registry = parseAgencyRegistry(JSON.parse(readFileSync('config/agencies.json', 'utf8')));
const table = parseLegalBasisTable(JSON.parse(readFileSync('config/legal-basis.json', 'utf8')), new Set(registry.agencies.keys()));
const engine = new InlineEngine({ current: 1, masters: new Map([[1, randomBytes(32)]]) });
const subjects = new SubjectKeys(randomBytes(32));
const pageTokens = new PageTokens(randomBytes(32));
const NUMBER = '621498320257';

function ctx(agency: string): CallContext {
  return { agency: registry.agencies.get(agency)!, method: 'test', deadline: Date.now() + 10_000, signal: new AbortController().signal, requestId: undefined, log: silentLogger };
}

class FakeWriter {
  readonly drafts: AccessRecordDraft[] = [];
  failing = false;
  async append(d: AccessRecordDraft): Promise<void> {
    if (this.failing) throw new GatewayError('UNAVAILABLE', 'the access record could not be written; nothing was released');
    this.drafts.push(d);
  }
}

class FakeProviders {
  readonly calls: ProvideCall[] = [];
  constructor(public result: ProvideResult) {}
  async provide(c: ProvideCall): Promise<ProvideResult> {
    this.calls.push(c);
    return this.result;
  }
}

function gateway(result: ProvideResult = { kind: 'provided', payload: Buffer.from('{"ok":true}'), contentType: 'application/json' }) {
  const writer = new FakeWriter();
  const providers = new FakeProviders(result);
  const service = new GatewayService({ engine, subjects, writer, providers, policy: () => ({ registry, table }), providerTimeoutMs: 5000 });
  return { writer, providers, service };
}

async function codeOf(agency: string): Promise<string> {
  return (await gateway().service.issueCode({ personalNumber: NUMBER } as never, ctx(agency))).code;
}

const query = (code: string, provider = 'tax', procedure = 'welfare.public-assistance', item = 'income') => ({ code, provider, procedure, item }) as never;

describe('GatewayService', () => {
  it('issues a code and records the issuance under the person\'s subject key', async () => {
    const { writer, service } = gateway();
    const r = await service.issueCode({ personalNumber: NUMBER } as never, ctx('welfare'));
    expect(r.code).toMatch(/^[0-9A-Z]{28}$/);
    expect(writer.drafts).toMatchObject([{ recordId: r.recordId, subject: subjects.of(621498320257), requester: 'welfare', outcome: Outcome.ISSUED }]);
  });

  it('relays a query with legal basis: the provider gets its own code, the record says PROVIDED', async () => {
    const code = await codeOf('welfare');
    const { writer, providers, service } = gateway();
    const r = await service.queryInformation(query(code), ctx('welfare'));
    expect(Buffer.from(r.payload).toString()).toBe('{"ok":true}');
    expect(r.legalBasisRow).toBe('B2-002');
    const [call] = providers.calls;
    expect(call!.code).toBe(await codeOf('tax'));
    expect(call!.code).not.toBe(code);
    expect(JSON.stringify(call)).not.toContain(NUMBER);
    expect(writer.drafts).toMatchObject([{ recordId: r.recordId, outcome: Outcome.PROVIDED, provider: 'tax', legalBasisRow: 'B2-002', providedAt: expect.any(Number) }]);
  });

  it('releases nothing when the record cannot be written', async () => {
    const code = await codeOf('welfare');
    const { writer, service } = gateway();
    writer.failing = true;
    await expect(service.queryInformation(query(code), ctx('welfare'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('records a query without legal basis as DENIED, and never calls the provider', async () => {
    const code = await codeOf('welfare');
    const { writer, providers, service } = gateway();
    await expect(service.queryInformation(query(code, 'pension', 'pension.eligibility', 'pension-benefit'), ctx('welfare'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(providers.calls).toEqual([]);
    expect(writer.drafts).toMatchObject([{ outcome: Outcome.DENIED, legalBasisRow: '' }]);
  });

  it('records names outside the table and registry as unlisted or unregistered, not verbatim', async () => {
    const code = await codeOf('welfare');
    const { writer, service } = gateway();
    await expect(service.queryInformation(query(code, 'nobody', 'made.up', 'secret-item'), ctx('welfare'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(writer.drafts).toMatchObject([{ provider: UNREGISTERED, procedure: UNLISTED, item: UNLISTED }]);
  });

  it('refuses an agency without the requester role after recording that it named a person', async () => {
    const code = await codeOf('disclosure');
    const { writer, service } = gateway();
    await expect(service.queryInformation(query(code), ctx('disclosure'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(writer.drafts).toMatchObject([{ outcome: Outcome.DENIED, requester: 'disclosure' }]);
  });

  it('records NOT_FOUND and FAILED outcomes, and hands back the record id', async () => {
    const code = await codeOf('welfare');
    for (const [result, status, outcome] of [
      [{ kind: 'not-found' }, 'NOT_FOUND', Outcome.NOT_FOUND],
      [{ kind: 'failed', code: 'DEADLINE_EXCEEDED', grpcStatus: 4 }, 'DEADLINE_EXCEEDED', Outcome.FAILED],
      [{ kind: 'failed', code: 'UNAVAILABLE', grpcStatus: 14 }, 'UNAVAILABLE', Outcome.FAILED],
    ] as const) {
      const { writer, service } = gateway(result);
      const err = (await service.queryInformation(query(code), ctx('welfare')).catch((e: unknown) => e)) as GatewayError;
      expect(err.code).toBe(status);
      expect(err.details['x-record-id']).toBe(writer.drafts[0]!.recordId);
      expect(writer.drafts).toMatchObject([{ outcome, providedAt: null }]);
    }
  });

  it('records a query refused before the provider was called (its budget, its breaker) as FAILED, with retry-after-ms', async () => {
    const code = await codeOf('welfare');
    for (const [result, status, message] of [
      [{ kind: 'refused', reason: 'busy', retryAfterMs: 100, grpcStatus: 8 }, 'RESOURCE_EXHAUSTED', /as many queries in progress/],
      [{ kind: 'refused', reason: 'down', retryAfterMs: 750, grpcStatus: 14 }, 'UNAVAILABLE', /not answering; queries to it fail at once/],
    ] as const) {
      const { writer, providers, service } = gateway(result);
      const err = (await service.queryInformation(query(code), ctx('welfare')).catch((e: unknown) => e)) as GatewayError;
      expect(err.code).toBe(status);
      expect(err.message).toMatch(message);
      expect(err.details).toEqual({ 'retry-after-ms': String(result.retryAfterMs), 'x-record-id': writer.drafts[0]!.recordId });
      expect(writer.drafts).toMatchObject([{ outcome: Outcome.FAILED, providedAt: null, provider: 'tax' }]);
      // The guard is told which provider the call is for.
      expect(providers.calls[0]!.provider).toBe('tax');
    }
  });

  it('refuses another agency\'s code as INVALID_ARGUMENT, recording nothing', async () => {
    const code = await codeOf('tax');
    const { writer, providers, service } = gateway();
    await expect(service.queryInformation(query(code), ctx('welfare'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(writer.drafts).toEqual([]);
    expect(providers.calls).toEqual([]);
  });
});

function reader(rows: LoggedRecord[] = [], fail = false): RecordReader & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async listBySubject(q) {
      asked.push(`list:${q.subject}`);
      if (fail) throw new Error('database down');
      return rows;
    },
    async exchangesOf(q) {
      asked.push(`exchanges:${q.subject}:${q.agency}`);
      if (fail) throw new Error('database down');
      return rows;
    },
    async recordById(id) {
      asked.push(`record:${id}`);
      return rows.find((r) => r.recordId === id) ?? null;
    },
  };
}

/** No log has a checkpoint yet: records carry no proof. */
const noProofs: RecordProofs = { latest: async () => [], consistency: async () => [], ofRecords: async (rs) => rs.map(() => null) };

describe('RecordsService', () => {
  it('lets only the disclosure agency read, and records the read before sending anything', async () => {
    const code = await codeOf('disclosure');
    const writer = new FakeWriter();
    const store = reader();
    const service = new RecordsService({ engine, subjects, writer, store, proofs: noProofs, pageTokens });
    await expect(service.list({ code } as never, ctx('welfare'), async () => undefined)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const written: unknown[] = [];
    await service.list({ code } as never, ctx('disclosure'), async (r) => void written.push(r));
    expect(store.asked).toEqual([`list:${subjects.of(621498320257)}`]);
    expect(writer.drafts).toMatchObject([{ outcome: Outcome.RECORDS_READ, requester: 'disclosure' }]);
  });

  it('maps a store failure to UNAVAILABLE', async () => {
    const code = await codeOf('disclosure');
    const service = new RecordsService({ engine, subjects, writer: new FakeWriter(), store: reader([], true), proofs: noProofs, pageTokens });
    await expect(service.list({ code } as never, ctx('disclosure'), async () => undefined)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('BindingService', () => {
  it('records the report before it reads the affected exchanges, and refuses agencies that bind nothing', async () => {
    const code = await codeOf('welfare');
    const writer = new FakeWriter();
    const store = reader();
    const service = new BindingService({ engine, subjects, writer, store });
    const r = await service.reportWrongBinding({ code } as never, ctx('welfare'));
    expect(writer.drafts).toMatchObject([{ recordId: r.recordId, outcome: Outcome.BINDING_REPORTED }]);
    expect(store.asked).toEqual([`exchanges:${subjects.of(621498320257)}:welfare`]);
    const disclosureCode = await codeOf('disclosure');
    await expect(service.reportWrongBinding({ code: disclosureCode } as never, ctx('disclosure'))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});
