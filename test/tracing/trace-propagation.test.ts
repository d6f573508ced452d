/**
 * Tracing through a real gateway (mTLS, SQLite records, the simulated providers capturing what they receive):
 *
 *  - with OpenTelemetry (an SDK tracer over an in-memory exporter): the call's span continues the caller's
 *    traceparent, the provider call's span is what the provider receives as its parent, and each record wait
 *    is a span of the call; no attribute of any span holds a number, a code or a subject key;
 *  - without (the default): the caller's trace context reaches the provider as it came, and a call without one
 *    gets a trace id that the provider receives too;
 *  - either way, every log line of a call carries its request id and trace id, and the access log line says
 *    what the call was without a number in it.
 */
import type { Metadata } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { SubjectKeys } from '../../src/core/subject-key.js';
import { LinkageGateway } from '../../src/gen/linkage/v1/gateway_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { ATTR, otelTracing } from '../../src/tracing/otel-tracing.js';
import { startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';
const TRACESTATE = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';

interface Received {
  readonly agency: string;
  readonly recordId: string;
  readonly traceparent: unknown[];
  readonly tracestate: unknown[];
}

/** A gateway whose simulated providers remember the trace metadata of every request. */
async function gateway(extra: Parameters<typeof startHarness>[0] = {}): Promise<{ h: Harness; received: Received[] }> {
  const received: Received[] = [];
  const h = await startHarness({
    ...extra,
    simulation: { onRequest: (agency, req, md: Metadata) => received.push({ agency, recordId: req.recordId, traceparent: md.get('traceparent'), tracestate: md.get('tracestate') }) },
  });
  return { h, received };
}

/** A person the simulated tax office knows, with pension's code for them. */
async function personAtTax(h: Harness): Promise<{ number: string; value: number; code: string }> {
  const codec = new AgencyCodec(h.gw.keyring);
  const number = population(200, 41).find((n) => {
    const c = checkPersonalNumber(n);
    return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
  })!;
  const c = checkPersonalNumber(number);
  if (!c.ok) throw new Error('unreachable');
  const { code } = await h.client('pension').issueCode(number);
  return { number, value: c.value, code };
}

const QUERY = { provider: 'tax', procedure: 'pension.eligibility', item: 'income' };

function query(h: Harness, agency: string, code: string, metadata: Record<string, string>) {
  return callUnary(h.client(agency).gateway, LinkageGateway.method.queryInformation, { code, ...QUERY }, { deadline: Date.now() + 10_000, metadata });
}

interface LogLine {
  readonly msg: string;
  readonly [k: string]: unknown;
}

function logLines(h: Harness): LogLine[] {
  return h
    .logs()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogLine);
}

/** The personal data of a test person as it could leak: the number, every agency's code, the subject key. */
function secretsOf(h: Harness, p: { number: string; value: number; code: string }): string[] {
  const codec = new AgencyCodec(h.gw.keyring);
  return [p.number, p.code, ...['pension', 'tax', 'welfare', 'employment', 'disclosure'].map((a) => codec.encode(a, p.value)), new SubjectKeys(h.gw.keyring.subjectSecret).of(p.value)];
}

/** Every string a span holds that an exporter would send: name, attributes, events, links, status, resource. */
function spanStrings(s: ReadableSpan): string[] {
  const out = [s.name, s.status.message ?? ''];
  const values = (attrs: Record<string, unknown>) => Object.entries(attrs).flatMap(([k, v]) => [k, ...(Array.isArray(v) ? v : [v]).map(String)]);
  out.push(...values(s.attributes), ...values(s.resource.attributes as Record<string, unknown>));
  for (const e of s.events) out.push(e.name, ...values(e.attributes ?? {}));
  for (const l of s.links) out.push(...values(l.attributes ?? {}));
  return out;
}

/** The attributes spans may carry, and the shape of each value: ids, names, codes; nothing else. */
const ALLOWED: Readonly<Record<string, RegExp>> = {
  [ATTR.rpcSystem]: /^grpc$/,
  [ATTR.rpcService]: /^linkage\.v1\.\w+$/,
  [ATTR.rpcMethod]: /^\w+$/,
  [ATTR.grpcStatus]: /^\d{1,2}$/,
  [ATTR.agency]: /^[a-z][a-z0-9-]{0,31}$/,
  [ATTR.provider]: /^[a-z][a-z0-9-]{0,31}$/,
  [ATTR.outcome]: /^(provided|not-found|unavailable|deadline_exceeded|internal)$/,
  [ATTR.recordId]: /^[0-9A-Z]{24}$/,
  [ATTR.records]: /^\d+$/,
  [ATTR.requestId]: /^([0-9a-f-]{36}|[A-Za-z0-9._:-]{1,128}|\[digits\])$/,
};

const NUMBER_OR_CODE = [/(?<![0-9])[0-9]{12,13}(?![0-9])/, /(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{28}(?![0-9A-Za-z])/];

describe('with OpenTelemetry', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let h: Harness;
  let received: Received[];
  let person: Awaited<ReturnType<typeof personAtTax>>;

  beforeAll(async () => {
    ({ h, received } = await gateway({ tracing: otelTracing(provider.getTracer('linkgw-test')) }));
    person = await personAtTax(h);
  });
  afterAll(async () => {
    await h?.stop();
    await provider.shutdown();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

  it("continues the caller's trace into the provider, with a span for the call, the provider call and the record", async () => {
    const res = await query(h, 'pension', person.code, { traceparent: `00-${T}-${P}-01`, tracestate: TRACESTATE, 'x-request-id': 'req-trace-1' });
    await until(() => spansOf(T).length >= 3);
    const spans = spansOf(T);
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    const commit = spans.find((s) => s.name === 'linkgw.record.commit')!;

    expect(server.name).toBe('linkage.v1.LinkageGateway/QueryInformation');
    expect(server.parentSpanContext?.spanId).toBe(P);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(server.attributes).toMatchObject({ [ATTR.grpcStatus]: 0, [ATTR.agency]: 'pension', [ATTR.recordId]: res.recordId, [ATTR.requestId]: 'req-trace-1', [ATTR.rpcMethod]: 'QueryInformation' });
    expect(server.status.code).not.toBe(SpanStatusCode.ERROR);

    expect(client.name).toBe('linkage.v1.InformationProvider/Provide');
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.attributes).toMatchObject({ [ATTR.provider]: 'tax', [ATTR.outcome]: 'provided', [ATTR.grpcStatus]: 0 });

    expect(commit.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(commit.attributes[ATTR.recordId]).toBe(res.recordId);

    // The provider's parent is the gateway's provider-call span, in the caller's trace, with the caller's state.
    const got = received.find((r) => r.recordId === res.recordId)!;
    expect(got.traceparent).toEqual([`00-${T}-${client.spanContext().spanId}-01`]);
    expect(got.tracestate).toEqual([TRACESTATE]);
  });

  it('starts a trace for a call without traceparent, and for one whose traceparent is malformed (its tracestate dropped)', async () => {
    const before = exporter.getFinishedSpans().length;
    const plain = await query(h, 'pension', person.code, {});
    const bad = await query(h, 'pension', person.code, { traceparent: `00-${T.toUpperCase()}-${P}-01`, tracestate: TRACESTATE });
    for (const res of [plain, bad]) {
      const got = received.find((r) => r.recordId === res.recordId)!;
      const [, traceId, spanId, flags] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(\d\d)$/.exec(String(got.traceparent[0]))!;
      expect(traceId).not.toBe(T);
      expect(flags).toBe('01');
      expect(got.tracestate).toEqual([]);
      await until(() => spansOf(traceId!).length >= 3);
      const server = spansOf(traceId!).find((s) => s.kind === SpanKind.SERVER)!;
      expect(server.parentSpanContext).toBeUndefined();
      expect(spansOf(traceId!).find((s) => s.kind === SpanKind.CLIENT)!.spanContext().spanId).toBe(spanId);
    }
    expect(exporter.getFinishedSpans().length).toBeGreaterThanOrEqual(before + 6);
  });

  it("follows the caller's sampling decision: sampled out, nothing is recorded, the provider still gets the trace", async () => {
    const t = 'a'.repeat(16) + 'b'.repeat(16);
    const res = await query(h, 'pension', person.code, { traceparent: `00-${t}-${P}-00` });
    // The parent the provider sees is the gateway's unrecorded span, in the caller's trace, still not sampled.
    expect(String(received.find((r) => r.recordId === res.recordId)!.traceparent[0])).toMatch(new RegExp(`^00-${t}-[0-9a-f]{16}-00$`));
    await new Promise((r) => setTimeout(r, 50));
    expect(spansOf(t)).toEqual([]);
  });

  it('marks refusals and failures with their status, with a span for the record a refusal writes', async () => {
    const t = '1'.repeat(31) + 'f';
    const s = await statusOf(query(h, 'disclosure', person.code, { traceparent: `00-${t}-${P}-01` }));
    // The disclosure system has its own codes: pension's does not decode for it.
    expect(s.code).toBe(3);
    const welfareCode = (await h.client('welfare').issueCode(person.number)).code;
    const denied = await statusOf(query(h, 'welfare', welfareCode, { traceparent: `00-${t}-${P}-01` }));
    expect(denied.code).toBe(7);
    await until(() => spansOf(t).filter((x) => x.kind === SpanKind.SERVER).length === 2);
    const servers = spansOf(t).filter((x) => x.kind === SpanKind.SERVER);
    expect(servers.map((x) => x.attributes[ATTR.grpcStatus]).sort()).toEqual([3, 7]);
    // Refused by the caller's fault: not an error of the gateway's.
    expect(servers.every((x) => x.status.code !== SpanStatusCode.ERROR)).toBe(true);
    const deniedSpan = servers.find((x) => x.attributes[ATTR.grpcStatus] === 7)!;
    expect(deniedSpan.attributes[ATTR.recordId]).toMatch(/^[0-9A-Z]{24}$/);
    expect(spansOf(t).filter((x) => x.name === 'linkgw.record.commit' && x.parentSpanContext?.spanId === deniedSpan.spanContext().spanId)).toHaveLength(1);
  });

  it('puts no personal data in any span: attributes are ids, names and codes only, a request id that is a number scrubbed', async () => {
    // A careless caller uses the personal number as its request id.
    await query(h, 'pension', person.code, { 'x-request-id': person.number, traceparent: `00-${T}-${P}-01` });
    await h.client('pension').issueBulk([person.number, ...population(3, 43)], 2);
    await h.client('disclosure').listRecords({ code: (await h.client('disclosure').issueCode(person.number)).code });
    await until(() => exporter.getFinishedSpans().some((s) => s.name === 'linkage.v1.AccessRecords/ListAccessRecords'));
    const spans = exporter.getFinishedSpans();
    expect(spans.length).toBeGreaterThan(15);
    expect(new Set(spans.map((s) => s.name))).toEqual(
      new Set([
        'linkage.v1.LinkageGateway/IssueCode',
        'linkage.v1.LinkageGateway/IssueCodes',
        'linkage.v1.LinkageGateway/QueryInformation',
        'linkage.v1.AccessRecords/ListAccessRecords',
        'linkage.v1.InformationProvider/Provide',
        'linkgw.record.commit',
      ]),
    );
    const secrets = secretsOf(h, person);
    for (const s of spans) {
      for (const [k, v] of Object.entries(s.attributes)) {
        expect(ALLOWED[k], `attribute ${k} of ${s.name}`).toBeDefined();
        expect(String(v), `${k} of ${s.name}`).toMatch(ALLOWED[k]!);
      }
      for (const str of spanStrings(s)) {
        for (const x of secrets) expect(str, s.name).not.toContain(x);
        for (const re of NUMBER_OR_CODE) expect(str, s.name).not.toMatch(re);
      }
    }
    expect(spans.some((s) => s.attributes[ATTR.requestId] === '[digits]')).toBe(true);
    // The bulk stream's span names how many records it waited for.
    const bulk = spans.find((s) => s.name === 'linkage.v1.LinkageGateway/IssueCodes')!;
    expect(bulk.attributes[ATTR.records]).toBe(2);
  });
});

describe('without OpenTelemetry (the default)', () => {
  let h: Harness;
  let received: Received[];
  let person: Awaited<ReturnType<typeof personAtTax>>;

  beforeAll(async () => {
    ({ h, received } = await gateway());
    person = await personAtTax(h);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("passes the caller's traceparent and tracestate to the provider as they came", async () => {
    const res = await query(h, 'pension', person.code, { traceparent: `00-${T}-${P}-01`, tracestate: TRACESTATE });
    const got = received.find((r) => r.recordId === res.recordId)!;
    expect(got).toMatchObject({ agency: 'tax', traceparent: [`00-${T}-${P}-01`], tracestate: [TRACESTATE] });
  });

  it('gives a call without one a trace id, which the provider receives (not sampled) and the logs carry', async () => {
    const res = await query(h, 'pension', person.code, { 'x-request-id': 'req-untraced-1' });
    const got = received.find((r) => r.recordId === res.recordId)!;
    const [, traceId] = /^00-([0-9a-f]{32})-[0-9a-f]{16}-00$/.exec(String(got.traceparent[0]))!;
    await until(() => logLines(h).some((l) => l.msg === 'access' && l.recordId === res.recordId));
    const line = logLines(h).find((l) => l.msg === 'access' && l.recordId === res.recordId)!;
    expect(line).toMatchObject({ level: 'info', requestId: 'req-untraced-1', traceId, method: 'QueryInformation', agency: 'pension', code: 'OK' });
    expect(line.durationMs).toBeGreaterThan(0);
  });

  it('logs one access line per call, with request and trace ids on every line of a call, and no number', async () => {
    await h.client('pension').issueCode(person.number);
    await statusOf(h.client('pension').issueCode('123'));
    await statusOf(query(h, 'pension', 'not-a-code', { traceparent: `00-${T}-${P}-01`, 'x-request-id': person.number }));
    await h.client('disclosure').listRecords({ code: (await h.client('disclosure').issueCode(person.number)).code });
    await until(() => logLines(h).some((l) => l.msg === 'access' && l.method === 'ListAccessRecords'));
    const lines = logLines(h);
    const access = lines.filter((l) => l.msg === 'access');
    expect(access.length).toBeGreaterThanOrEqual(7);
    for (const l of access) {
      expect(Object.keys(l).sort(), JSON.stringify(l)).toEqual(
        ['time', 'level', 'msg', 'requestId', 'traceId', 'method', 'agency', 'code', 'durationMs', ...(l.recordId ? ['recordId'] : [])].sort(),
      );
      expect(l.traceId).toMatch(/^[0-9a-f]{32}$/);
    }
    expect(access.filter((l) => l.method === 'IssueCode').map((l) => l.code)).toEqual(expect.arrayContaining(['OK', 'INVALID_ARGUMENT']));
    // Every line logged on behalf of a call (it names the method) carries both ids.
    const ofCalls = lines.filter((l) => 'method' in l);
    expect(ofCalls.length).toBeGreaterThan(access.length);
    for (const l of ofCalls) expect([typeof l.requestId, typeof l.traceId], JSON.stringify(l)).toEqual(['string', 'string']);
    // The request id that was a personal number is logged scrubbed, with the caller's trace id.
    expect(access.filter((l) => l.requestId === '[digits]')).toMatchObject([{ traceId: T, code: 'INVALID_ARGUMENT', method: 'QueryInformation' }]);
    const text = h.logs();
    for (const x of secretsOf(h, person)) expect(text).not.toContain(x);
  });

  it('can be turned off, or logged at another level', async () => {
    for (const [setting, level] of [['off', undefined], ['debug', 'debug']] as const) {
      const g = await startHarness({ env: { LINKGW_ACCESS_LOG: setting } });
      try {
        await statusOf(g.client('pension').issueCode('123'));
        await g.client('pension').issueCode(person.number);
        await new Promise((r) => setTimeout(r, 50));
        const access = logLines(g).filter((l) => l.msg === 'access');
        if (level) expect(access.map((l) => l.level)).toEqual([level, level]);
        else expect(access).toEqual([]);
      } finally {
        await g.stop();
      }
    }
  });
});
