/**
 * W3C Trace Context parsing: what the gateway accepts from a caller and sends on, the spec's examples and its
 * edge cases (versions, zero ids, repeated headers, tracestate limits). Also which OTEL_* environments turn
 * tracing on, and the ids the gateway makes (never scrubbed out of its own logs).
 */
import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/config/settings.js';
import { scrub } from '../../src/log/logger.js';
import { newRequestId, newSpanId, newTraceId } from '../../src/tracing/ids.js';
import { tracingPlan } from '../../src/tracing/otel-sdk.js';
import { formatTraceparent, parseTraceparent, parseTracestate } from '../../src/tracing/w3c-trace-context.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const P = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('reads the spec example and writes it back', () => {
    expect(parseTraceparent([`00-${T}-${P}-01`])).toEqual({ traceId: T, parentId: P, flags: 1 });
    expect(formatTraceparent(T, P, 1)).toBe(`00-${T}-${P}-01`);
    expect(formatTraceparent(T, P, 0)).toBe(`00-${T}-${P}-00`);
  });

  it('reads a later version by its first four fields, and refuses version ff', () => {
    expect(parseTraceparent([`01-${T}-${P}-03-what-comes-later`])).toEqual({ traceId: T, parentId: P, flags: 3 });
    expect(parseTraceparent([`ff-${T}-${P}-01`])).toBeUndefined();
  });

  it.each([
    ['nothing', []],
    ['two values', [`00-${T}-${P}-01`, `00-${T}-${P}-01`]],
    ['upper case', [`00-${T.toUpperCase()}-${P}-01`]],
    ['a zero trace id', [`00-${'0'.repeat(32)}-${P}-01`]],
    ['a zero parent id', [`00-${T}-${'0'.repeat(16)}-01`]],
    ['version 00 with a fifth field', [`00-${T}-${P}-01-x`]],
    ['a short trace id', [`00-${T.slice(1)}-${P}-01`]],
    ['bytes, not text', [Buffer.from(`00-${T}-${P}-01`)]],
    ['a personal number where the ids go', ['00-621498320257-621498320257-01']],
  ])('refuses %s', (_what, values) => {
    expect(parseTraceparent(values)).toBeUndefined();
  });
});

describe('tracestate', () => {
  it('keeps a valid list, joining several values in order and dropping empty members', () => {
    expect(parseTracestate(['rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'])).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(parseTracestate(['rojo=1, ,', 'congo=2', 'tenant@vendor=x'])).toBe('rojo=1,congo=2,tenant@vendor=x');
    expect(parseTracestate([])).toBeUndefined();
  });

  it.each([
    ['a key twice', ['a=1,a=2']],
    ['an upper-case key', ['Rojo=1']],
    ['a member without =', ['rojo']],
    ['a value with =', ['rojo=a=b']],
    ['a value with a control character', ['rojo=a\tb']],
    ['a value that is not ASCII', ['rojo=番号']],
    ['33 members', [Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')]],
    ['over 512 characters', [Array.from({ length: 3 }, (_, i) => `k${i}=${'v'.repeat(200)}`).join(',')]],
  ])('drops it whole for %s', (_what, values) => {
    expect(parseTracestate(values)).toBeUndefined();
  });
});

describe('tracing from OTEL_* variables', () => {
  it('stays off unless an exporter is asked for', () => {
    expect(tracingPlan({})).toBeUndefined();
    expect(tracingPlan({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBeUndefined();
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBeUndefined();
    expect(tracingPlan({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBeUndefined();
  });

  it('turns on with an OTLP endpoint or a named exporter, over the protocol asked for', () => {
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({ exporters: ['otlp'], protocol: 'http/protobuf' });
    expect(tracingPlan({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toEqual({ exporters: ['otlp'], protocol: 'http/protobuf' });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toEqual({ exporters: ['otlp', 'console'], protocol: 'grpc' });
    expect(tracingPlan({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })?.protocol).toBe('http/json');
  });

  it('stops the start on a value it does not know, naming the variable', () => {
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(SettingsError);
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER="zipkin".*not zipkin/);
    expect(() => tracingPlan({ OTEL_TRACES_EXPORTER: 'none,otlp' })).toThrow(/"none" goes alone/);
    expect(() => tracingPlan({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL="http": one of/);
  });
});

describe('ids the gateway makes', () => {
  it('are well formed, and the log scrub keeps every one of them whole', () => {
    for (let i = 0; i < 2000; i++) {
      const [r, t, s] = [newRequestId(), newTraceId(), newSpanId()];
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      expect(r).toMatch(/^[0-9a-f-]{36}$/);
      expect([scrub(r), scrub(t), scrub(s)]).toEqual([r, t, s]);
    }
  });
});
