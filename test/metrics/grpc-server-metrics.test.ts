/**
 * The standard gRPC server metrics, build info and certificate expiry, each on its own registry: the names
 * and labels that go-grpc-prometheus dashboards expect, and values that follow the calls.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LinkageGateway } from '../../src/gen/linkage/v1/gateway_pb.js';
import { AccessRecords } from '../../src/gen/linkage/v1/records_pb.js';
import { CertificateExpiry, earliestExpiry } from '../../src/metrics/certificate-expiry.js';
import { readBuildInfo, registerBuildInfo } from '../../src/metrics/build-info.js';
import { GrpcServerMetrics, grpcCodeLabel, grpcCodeLabelOf, rpcsOf, type Rpc } from '../../src/metrics/grpc-server-metrics.js';
import { GatewayMetrics } from '../../src/metrics/metrics.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ISSUE: Rpc = { service: 'linkage.v1.LinkageGateway', method: 'IssueCode', type: 'unary' };
const BULK: Rpc = { service: 'linkage.v1.LinkageGateway', method: 'IssueCodes', type: 'bidi_stream' };

async function value(reg: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => String((x.labels as Record<string, unknown>)[k]) === l) && Object.keys(x.labels).length === Object.keys(labels).length);
  return v?.value;
}

describe('GrpcServerMetrics', () => {
  it('counts started, messages and handled calls under the go-grpc-prometheus names and labels', async () => {
    const reg = new Registry();
    const m = new GrpcServerMetrics(reg);
    m.started(ISSUE);
    m.received(ISSUE);
    m.sent(ISSUE);
    m.handled(ISSUE, 'OK', 0.002);
    m.started(ISSUE);
    m.received(ISSUE);
    m.handled(ISSUE, 'UNAVAILABLE', 0.3);
    m.started(BULK);
    for (let i = 0; i < 3; i++) m.received(BULK);
    for (let i = 0; i < 2; i++) m.sent(BULK);
    m.handled(BULK, 'Canceled', 1.5);

    const rpc = { grpc_service: 'linkage.v1.LinkageGateway', grpc_method: 'IssueCode', grpc_type: 'unary' };
    const bulk = { ...rpc, grpc_method: 'IssueCodes', grpc_type: 'bidi_stream' };
    expect(await value(reg, 'grpc_server_started_total', rpc)).toBe(2);
    expect(await value(reg, 'grpc_server_msg_received_total', rpc)).toBe(2);
    expect(await value(reg, 'grpc_server_msg_sent_total', rpc)).toBe(1);
    expect(await value(reg, 'grpc_server_handled_total', { ...rpc, grpc_code: 'OK' })).toBe(1);
    expect(await value(reg, 'grpc_server_handled_total', { ...rpc, grpc_code: 'Unavailable' })).toBe(1);
    expect(await value(reg, 'grpc_server_msg_received_total', bulk)).toBe(3);
    expect(await value(reg, 'grpc_server_msg_sent_total', bulk)).toBe(2);
    expect(await value(reg, 'grpc_server_handled_total', { ...bulk, grpc_code: 'Canceled' })).toBe(1);

    const text = await reg.metrics();
    expect(text).toMatch(/^# TYPE grpc_server_handling_seconds histogram$/m);
    expect(text).toContain('grpc_server_handling_seconds_bucket{le="0.0025",grpc_service="linkage.v1.LinkageGateway",grpc_method="IssueCode",grpc_type="unary"} 1');
    expect(text).toContain('grpc_server_handling_seconds_bucket{le="0.5",grpc_service="linkage.v1.LinkageGateway",grpc_method="IssueCode",grpc_type="unary"} 2');
    expect(text).toContain('grpc_server_handling_seconds_count{grpc_service="linkage.v1.LinkageGateway",grpc_method="IssueCodes",grpc_type="bidi_stream"} 1');
  });

  it('names status codes as Go does, whatever spelling it is given, and nothing else', () => {
    expect(grpcCodeLabel(0)).toBe('OK');
    expect(grpcCodeLabel(1)).toBe('Canceled');
    expect(grpcCodeLabel(4)).toBe('DeadlineExceeded');
    expect(grpcCodeLabel(16)).toBe('Unauthenticated');
    expect(grpcCodeLabel(99)).toBe('Unknown');
    expect(grpcCodeLabelOf('CANCELLED')).toBe('Canceled');
    expect(grpcCodeLabelOf('RESOURCE_EXHAUSTED')).toBe('ResourceExhausted');
    expect(grpcCodeLabelOf('DataLoss')).toBe('DataLoss');
    expect(grpcCodeLabelOf('no such code 123456789012')).toBe('Unknown');
  });

  it('lists the gateway methods with their types from the descriptors, and starts their series at 0', async () => {
    const rpcs = rpcsOf([LinkageGateway, AccessRecords]);
    expect(rpcs).toEqual(
      expect.arrayContaining([
        ISSUE,
        BULK,
        { service: 'linkage.v1.LinkageGateway', method: 'QueryInformation', type: 'unary' },
        { service: 'linkage.v1.AccessRecords', method: 'ListAccessRecords', type: 'server_stream' },
      ]),
    );
    const reg = new Registry();
    new GrpcServerMetrics(reg, rpcs);
    const rpc = { grpc_service: 'linkage.v1.AccessRecords', grpc_method: 'ListAccessRecords', grpc_type: 'server_stream' };
    expect(await value(reg, 'grpc_server_started_total', rpc)).toBe(0);
    expect(await value(reg, 'grpc_server_handled_total', { ...rpc, grpc_code: 'Unavailable' })).toBe(0);
    expect(await value(reg, 'grpc_server_msg_sent_total', rpc)).toBe(0);
  });

  it('is fed by the gateway metrics from the call pipeline\'s observer events', async () => {
    const m = new GatewayMetrics(() => new Set(['pension']), { defaultMetrics: false, rpcs: [ISSUE] });
    m.callStarted(ISSUE);
    m.messageReceived(ISSUE);
    m.messageSent(ISSUE);
    m.callEnded(ISSUE, 'pension', 3, 0.001);
    const rpc = { grpc_service: 'linkage.v1.LinkageGateway', grpc_method: 'IssueCode', grpc_type: 'unary' };
    expect(await value(m.registry, 'grpc_server_started_total', rpc)).toBe(1);
    expect(await value(m.registry, 'grpc_server_handled_total', { ...rpc, grpc_code: 'InvalidArgument' })).toBe(1);
    expect(await value(m.registry, 'grpc_server_msg_received_total', rpc)).toBe(1);
    expect(await value(m.registry, 'grpc_server_msg_sent_total', rpc)).toBe(1);
    expect(await value(m.registry, 'linkgw_requests_total', { method: 'IssueCode', code: 'INVALID_ARGUMENT', agency: 'pension' })).toBe(1);
  });
});

describe('linkgw_build_info', () => {
  it('is 1 with the package version, a revision and the Node version', async () => {
    const reg = new Registry();
    const info = readBuildInfo(PACKAGE_ROOT);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    registerBuildInfo(reg, info);
    expect(await reg.metrics()).toContain(`linkgw_build_info{version="${info.version}",revision="${info.revision}",node_version="${process.version}"} 1`);
  });

  it('takes the revision from a REVISION file, and only a well-formed one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-build-'));
    try {
      writeFileSync(join(dir, 'package.json'), '{"version":"9.8.7"}');
      expect(readBuildInfo(dir)).toMatchObject({ version: '9.8.7', revision: 'unknown' });
      writeFileSync(join(dir, 'REVISION'), '0123abcd\n');
      expect(readBuildInfo(dir).revision).toBe('0123abcd');
      writeFileSync(join(dir, 'REVISION'), 'not "a" label\n');
      expect(readBuildInfo(dir).revision).toBe('unknown');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function certificate(notAfter: Date): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=expiry test',
    notBefore: new Date(notAfter.getTime() - 86_400_000),
    notAfter,
    signingAlgorithm: alg,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]["keys"],
  });
  return cert.toString('pem');
}

describe('linkgw_tls_certificate_expiry_seconds', () => {
  it('is the notAfter of the server certificate and the earliest of the CA bundle, in Unix seconds', async () => {
    const soon = new Date('2031-02-03T04:05:06Z');
    const later = new Date('2036-07-08T09:10:11Z');
    const leaf = await certificate(later);
    const bundle = (await certificate(later)) + '\n' + (await certificate(soon));
    expect(earliestExpiry(leaf)).toBe(later.getTime() / 1000);
    expect(earliestExpiry(bundle)).toBe(soon.getTime() / 1000);

    const dir = mkdtempSync(join(tmpdir(), 'linkgw-certs-'));
    try {
      writeFileSync(join(dir, 'server.crt'), leaf);
      writeFileSync(join(dir, 'ca.crt'), bundle);
      const reg = new Registry();
      new CertificateExpiry(reg).observeFiles({ server: join(dir, 'server.crt'), ca: join(dir, 'ca.crt') });
      expect(await value(reg, 'linkgw_tls_certificate_expiry_seconds', { certificate: 'server' })).toBe(later.getTime() / 1000);
      expect(await value(reg, 'linkgw_tls_certificate_expiry_seconds', { certificate: 'ca' })).toBe(soon.getTime() / 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file that holds no certificate, naming the file', () => {
    expect(() => earliestExpiry('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(/no PEM certificate/);
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-certs-'));
    try {
      writeFileSync(join(dir, 'key.pem'), 'not a certificate');
      expect(() => new CertificateExpiry(new Registry()).observeFiles({ server: join(dir, 'key.pem'), ca: join(dir, 'key.pem') })).toThrow(/key\.pem: no PEM certificate found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
