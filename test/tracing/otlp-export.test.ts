/**
 * OpenTelemetry as an operator turns it on: `linkgw serve` in its own process with nothing but the standard
 * OTEL_* variables, exporting OTLP over HTTP to a collector this test plays (a server on a free loopback port).
 * Spans arrive with the caller's trace as their parent and the resource the environment names, and the last
 * ones are exported when the gateway stops. Without the variables, nothing is sent.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { LinkageGateway } from '../../src/gen/linkage/v1/gateway_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { killServed, serve } from '../helpers/serve-process.js';
import { until } from '../helpers/wait.js';
import { join } from 'node:path';

interface Export {
  readonly path: string;
  readonly contentType: string;
  readonly body: Buffer;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

let collector: Server;
let endpoint: string;
const exports: Export[] = [];

beforeAll(async () => {
  collector = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      exports.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end(req.headers['content-type']?.includes('json') ? '{}' : '');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  const a = collector.address();
  endpoint = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});
afterAll(async () => {
  await new Promise((r) => collector.close(r));
});
const dirs: string[] = [];
afterEach(() => {
  killServed();
  for (const d of dirs.splice(0)) {
    rmSync(d, { recursive: true, force: true });
    rmSync(`${d}-dev-ca`, { recursive: true, force: true });
  }
});

const T = '5bf92f3577b34da6a3ce929d0e0e4736';
const P = '10f067aa0ba902b7';

/** Starts `linkgw serve` with these OTEL_* variables; issues a code and queries with the caller's traceparent. */
async function driveGateway(env: Record<string, string>) {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const gw = await serve({ LINKGW_DATA_DIR: dataDir, ...env });
  const pension = new AgencyClient({ address: gw.address, agency: 'pension', pkiDir: join(dataDir, 'pki') });
  try {
    const { code } = await pension.issueCode('123456789018');
    await callUnary(pension.gateway, LinkageGateway.method.queryInformation, { code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }, { metadata: { traceparent: `00-${T}-${P}-01` } }).catch(() => undefined);
  } finally {
    pension.close();
  }
  return gw;
}

async function stop(gw: Awaited<ReturnType<typeof serve>>): Promise<number | null> {
  const exited = new Promise<number | null>((r) => gw.child.on('close', (code) => r(code)));
  gw.child.kill('SIGTERM');
  return exited;
}

describe('OTLP export from the OTEL_* environment', () => {
  it('sends the spans as OTLP/JSON, parented on the caller, with the resource the environment names', async () => {
    exports.length = 0;
    const gw = await driveGateway({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'linkgw-under-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci',
      // Long enough that the spans are still buffered at SIGTERM: the stop must flush them.
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    expect(gw.log()).toContain('"msg":"tracing on"');
    expect(await stop(gw)).toBe(0);
    expect(exports.length).toBeGreaterThan(0);
    expect(new Set(exports.map((e) => e.path))).toEqual(new Set(['/v1/traces']));
    expect(exports[0]!.contentType).toMatch(/json/);
    const docs = exports.map((e) => JSON.parse(e.body.toString()) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] });
    const resource = Object.fromEntries(docs[0]!.resourceSpans[0]!.resource.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
    expect(resource).toMatchObject({ 'service.name': 'linkgw-under-test', 'deployment.environment': 'ci', 'service.version': expect.any(String) });
    const spans = docs.flatMap((d) => d.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    const query = spans.find((s) => s.name === 'linkage.v1.LinkageGateway/QueryInformation')!;
    expect(query.traceId).toBe(T);
    expect(query.parentSpanId).toBe(P);
    expect(spans.filter((s) => s.traceId === T).map((s) => s.name)).toContain('linkgw.record.commit');
    expect(spans.map((s) => s.name)).toContain('linkage.v1.LinkageGateway/IssueCode');
    // The person's number went through the gateway; it is in no exported byte.
    for (const e of exports) expect(e.body.toString('latin1')).not.toContain('123456789018');
  });

  it('sends OTLP/protobuf by default', async () => {
    exports.length = 0;
    const gw = await driveGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });
    await until(() => exports.length > 0, 10_000);
    expect(exports[0]).toMatchObject({ path: '/v1/traces', contentType: 'application/x-protobuf' });
    // The trace id is in the message as its 16 bytes.
    await until(() => exports.some((e) => e.body.includes(Buffer.from(T, 'hex'))), 10_000);
    expect(await stop(gw)).toBe(0);
  });

  it('sends nothing when no OTEL_* variable asks for an exporter', async () => {
    exports.length = 0;
    const gw = await driveGateway({ OTEL_SERVICE_NAME: 'not-enough' });
    expect(gw.log()).not.toContain('tracing on');
    expect(await stop(gw)).toBe(0);
    expect(exports).toEqual([]);
  });

  it('refuses an exporter it does not know, with the configuration exit status', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    await expect(serve({ LINKGW_DATA_DIR: dataDir, OTEL_TRACES_EXPORTER: 'jaeger' })).rejects.toThrow(/exited 78[\s\S]*OTEL_TRACES_EXPORTER="jaeger"/);
  });
});
