/**
 * Code issuance over a real gRPC server on port 0 with mTLS: identity from certificates, single and bulk
 * issuance, bad input of every kind, health and reflection, and no personal number in the server's logs.
 */
import { create } from '@bufbuild/protobuf';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { IssueCodesRequestSchema, LinkageGateway, type IssueCodesResponse } from '../../src/gen/linkage/v1/gateway_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { INSECURE_AGENCY_HEADER } from '../../src/grpc/identity.js';
import { clientOptionsFor } from '../../src/grpc/channel-options.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { ensureDevPki, issueAgencyCertificate, pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population, withBadCheckDigit } from '../helpers/population.js';

let h: Harness;
const used: string[] = [];
const numbers = population(2000, 7);
used.push(...numbers);

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

/** A raw call with hand-made bytes, for garbage and oversize messages. */
function rawUnary(client: Client, path: string, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, r?: Buffer) =>
      e ? reject(e) : resolve(r!),
    ),
  );
}

describe('IssueCode', () => {
  it('issues a deterministic code per agency, different at every agency, without the number in it', async () => {
    const n = numbers[0]!;
    const pension = h.client('pension');
    const tax = h.client('tax');
    const a1 = await pension.issueCode(n);
    const a2 = await pension.issueCode(n);
    const b = await tax.issueCode(n);
    expect(a1.code).toBe(a2.code);
    expect(a1.code).not.toBe(b.code);
    expect(a1.code).not.toContain(n);
    expect(a1.recordId).not.toBe(a2.recordId);
    expect(a1.recordId).toMatch(/^[0-9A-Z]{24}$/);
  });

  it('refuses malformed numbers with INVALID_ARGUMENT and a reason that does not echo the number', async () => {
    const c = h.client('pension');
    const bad = withBadCheckDigit(numbers[1]!);
    used.push(bad);
    const cases: [string, RegExp][] = [
      [bad, /check digit/],
      [numbers[1]!.slice(0, 11), /exactly 12 digits/],
      [numbers[1]!.slice(0, 11) + 'x', /ASCII digits/],
      ['', /exactly 12 digits/],
      ['7000012050002', /corporate number/],
    ];
    for (const [input, reason] of cases) {
      const s = await statusOf(c.issueCode(input));
      expect(s.code).toBe(status.INVALID_ARGUMENT);
      expect(s.details).toMatch(reason);
      if (input.length >= 6) expect(s.details).not.toContain(input.slice(0, 6));
    }
  });

  it('answers garbage bytes with INVALID_ARGUMENT, and the server keeps serving', async () => {
    const c = h.client('pension');
    // Field 1, length-delimited, with a length far past the end of the message.
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    const s = await statusOf(rawUnary(c.gateway, '/linkage.v1.LinkageGateway/IssueCode', garbage));
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details).toMatch(/not a valid linkage\.v1\.IssueCodeRequest/);
    await expect(c.issueCode(numbers[2]!)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('refuses an oversize message with RESOURCE_EXHAUSTED before handling it', async () => {
    // A client without a send limit of its own, so the message reaches the server.
    const f = pkiFiles(join(h.dataDir, 'pki'));
    const unlimited = new Client(h.gw.address, channelCredentials({ ca: f.caCert, cert: f.agencyCert('pension'), key: f.agencyKey('pension') }), {
      ...clientOptionsFor(h.gw.address),
      'grpc.max_send_message_length': -1,
    });
    try {
      const huge = Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x03]), Buffer.alloc(6 * 1024 * 1024, 0x31)]);
      const s = await statusOf(rawUnary(unlimited, '/linkage.v1.LinkageGateway/IssueCode', huge));
      expect(s.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(s.details).toMatch(/Received message larger than max/);
    } finally {
      unlimited.close();
    }
    await expect(h.client('pension').issueCode(numbers[2]!)).resolves.toMatchObject({ code: expect.any(String) });
  });
});

describe('agency identity', () => {
  it('refuses a client whose certificate comes from another CA', async () => {
    const other = tempDir('linkgw-other-ca-');
    await ensureDevPki(other, new Map([['pension', 'pension']]), 'some other CA');
    const mine = pkiFiles(join(h.dataDir, 'pki'));
    const theirs = pkiFiles(other);
    const c = new AgencyClient({ address: h.gw.address, agency: 'pension', files: { ca: mine.caCert, cert: theirs.agencyCert('pension'), key: theirs.agencyKey('pension') } });
    try {
      const s = await statusOf(c.issueCode(numbers[3]!, 3000));
      expect(s.code).toBe(status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });

  it('refuses a client without a certificate', async () => {
    const mine = pkiFiles(join(h.dataDir, 'pki'));
    const { readFileSync } = await import('node:fs');
    const creds = credentials.createSsl(readFileSync(mine.caCert));
    const client = new Client(h.gw.address, creds, clientOptionsFor(h.gw.address));
    try {
      const s = await statusOf(rawUnary(client, '/linkage.v1.LinkageGateway/IssueCode', Buffer.alloc(0)));
      expect(s.code).toBe(status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it('refuses a certificate from the right CA that names no registered agency at the handshake (issue 20: it holds no connection)', async () => {
    await issueAgencyCertificate(join(h.dataDir, 'pki'), `${h.dataDir}-dev-ca`, 'intruder', 'intruder');
    const c = h.client('intruder');
    const s = await statusOf(c.issueCode(numbers[4]!));
    expect(s.code).toBe(status.UNAVAILABLE);
  });

  it('takes the agency from the certificate, whatever the metadata claims', async () => {
    const f = pkiFiles(join(h.dataDir, 'pki'));
    const asTax = new AgencyClient({ address: h.gw.address, agency: 'tax', files: { ca: f.caCert, cert: f.agencyCert('tax'), key: f.agencyKey('tax') } });
    const pension = h.client('pension');
    try {
      // The tax office's certificate, with metadata naming the pension service (the plaintext-mode header).
      const viaTax = await callUnary(asTax.gateway, LinkageGateway.method.issueCode, { personalNumber: numbers[5]! }, {
        deadline: Date.now() + 10_000,
        metadata: { [INSECURE_AGENCY_HEADER]: 'pension' },
      });
      const viaPension = await pension.issueCode(numbers[5]!);
      expect(viaTax.code).not.toBe(viaPension.code);
      expect(viaTax.code).toBe((await h.client('tax').issueCode(numbers[5]!)).code);
    } finally {
      asTax.close();
    }
  });
});

describe('IssueCodes (bulk)', () => {
  it('answers each batch in order, one status per item, bad numbers failing only themselves', async () => {
    const c = h.client('welfare');
    const batch = numbers.slice(100, 1100).map((n, i) => (i % 97 === 3 ? withBadCheckDigit(n) : n));
    used.push(...batch);
    const results = await c.issueBulk(batch, 250);
    expect(results).toHaveLength(batch.length);
    const singles = await Promise.all([104, 105, 201, 1099].map((i) => c.issueCode(numbers[i]!)));
    expect(results[4]!.code).toBe(singles[0]!.code);
    expect(results[5]!.code).toBe(singles[1]!.code);
    expect(results[101]!.code).toBe(singles[2]!.code);
    expect(results[999]!.code).toBe(singles[3]!.code);
    results.forEach((r, i) => {
      if (i % 97 === 3) {
        expect(r.status).toBe(status.INVALID_ARGUMENT);
        expect(r.code).toBe('');
        expect(r.error).toMatch(/check digit/);
      } else {
        expect(r.status).toBe(0);
        expect(r.code).toHaveLength(28);
      }
    });
  });

  it('numbers batches by their offset in the stream', async () => {
    const c = h.client('tax');
    const call = c.issueStream();
    const got: IssueCodesResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: IssueCodesResponse) => got.push(r));
      call.on('end', resolve);
      call.on('error', reject);
    });
    for (const size of [3, 0, 5, 1]) call.write(create(IssueCodesRequestSchema, { personalNumbers: numbers.slice(1500, 1500 + size) }));
    call.end();
    await done;
    expect(got.map((r) => [Number(r.offset), r.results.length])).toEqual([[0, 3], [3, 0], [3, 5], [8, 1]]);
  });

  it('ends the stream with INVALID_ARGUMENT for a batch over the limit', async () => {
    const c = h.client('tax');
    const call = c.issueStream();
    const err = new Promise<ServiceError>((resolve) => {
      call.on('data', () => undefined);
      call.on('error', (e: ServiceError) => resolve(e));
      call.on('end', () => resolve({ code: -1 } as unknown as ServiceError));
    });
    call.write(create(IssueCodesRequestSchema, { personalNumbers: Array.from({ length: 10_001 }, (_, i) => numbers[i % numbers.length]!) }));
    call.end();
    const e = await err;
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/at most 10000/);
  });
});

describe('operability', () => {
  it('serves grpc.health.v1 and reflection to a client with an agency certificate', async () => {
    const f = pkiFiles(join(h.dataDir, 'pki'));
    const creds = channelCredentials({ ca: f.caCert, cert: f.agencyCert('pension'), key: f.agencyKey('pension') });
    const client = new Client(h.gw.address, creds, clientOptionsFor(h.gw.address));
    try {
      // HealthCheckRequest{service: "linkage.v1.LinkageGateway"}: field 1, string.
      const name = Buffer.from('linkage.v1.LinkageGateway');
      const res = await rawUnary(client, '/grpc.health.v1.Health/Check', Buffer.concat([Buffer.from([0x0a, name.length]), name]));
      expect([...res]).toEqual([0x08, 0x01]); // status: SERVING
      const list = await new Promise<Buffer>((resolve, reject) => {
        const call = client.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b, new Metadata(), {
          deadline: Date.now() + 5000,
        });
        call.on('data', (b: Buffer) => {
          resolve(b);
          call.end();
        });
        call.on('error', reject);
        // ServerReflectionRequest{list_services: "*"}: field 7, string.
        call.write(Buffer.from([0x3a, 0x01, 0x2a]));
      });
      const text = list.toString('latin1');
      expect(text).toContain('linkage.v1.LinkageGateway');
      expect(text).toContain('linkage.v1.AccessRecords');
    } finally {
      client.close();
    }
  });

  it('exposes Prometheus metrics with bounded labels', async () => {
    const res = await fetch(`http://${h.gw.opsAddress}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/linkgw_requests_total\{method="IssueCode",code="OK",agency="pension"\} \d+/);
    expect(text).toMatch(/linkgw_handshakes_refused_total\{reason="unknown_agency"\} [1-9]/);
    expect((await fetch(`http://${h.gw.opsAddress}/readyz`)).status).toBe(200);
  });
});

describe('privacy of logs and metrics', () => {
  it('never writes a personal number used in these tests to the log or the metrics', async () => {
    const logs = h.logs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).toContain('"msg":"gateway serving"');
    const metrics = await (await fetch(`http://${h.gw.opsAddress}/metrics`)).text();
    for (const n of new Set(used)) {
      expect(logs.includes(n), 'number found in the log').toBe(false);
      expect(metrics.includes(n), 'number found in the metrics').toBe(false);
    }
  });
});
