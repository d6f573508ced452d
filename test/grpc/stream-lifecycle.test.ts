/**
 * Streams that end before the server is done with them: a client that cancels, a deadline that passes, a
 * client that stops reading. Each must end the call on the server and give back its in-flight slot (a leaked
 * slot is capacity lost until restart: after LINKGW_MAX_IN_FLIGHT of them every call is refused).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { status, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { connect, constants } from 'node:http2';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueCodesRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { ListAccessRecordsRequestSchema } from '../../src/gen/linkage/v1/records_pb.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
const callsInFlight = () => h.gw.inFlight.total;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statusOf(call: { on(event: 'error', l: (e: ServiceError) => void): unknown }): Promise<number> {
  return new Promise((resolve) => call.on('error', (e) => resolve(e.code)));
}

describe('a stream that ends early gives back its slot', () => {
  it('IssueCodes cancelled by the client with batches in flight', async () => {
    const call = h.client('pension').issueStream();
    const ended = statusOf(call);
    let answered = 0;
    call.on('data', () => void answered++);
    for (let i = 0; i < 8; i++) call.write(create(IssueCodesRequestSchema, { personalNumbers: population(5000, 100 + i) }));
    await until(() => callsInFlight() === 1);
    call.cancel();
    expect(await ended).toBe(status.CANCELLED);
    await until(() => callsInFlight() === 0);
    expect(answered).toBeLessThan(8);
    // The gateway goes on serving.
    const r = await h.client('pension').issueCode(population(1, 7)[0]!);
    expect(r.code).toMatch(/^[0-9A-Z]{28}$/);
  });

  it('an idle IssueCodes stream whose deadline passes', async () => {
    const call = h.client('tax').issueStream(400);
    const ended = statusOf(call);
    call.on('data', () => undefined);
    await until(() => callsInFlight() === 1);
    expect(await ended).toBe(status.DEADLINE_EXCEEDED);
    await until(() => callsInFlight() === 0);
  });

  it('ListAccessRecords cancelled while the server waits for the client to read', async () => {
    // One person with 1,000 records (about 100 kB): more than HTTP/2 lets the server send unread.
    const [number] = population(1, 4242);
    const welfare = h.client('welfare');
    for (let i = 0; i < 1000; i += 100) await Promise.all(Array.from({ length: 100 }, () => welfare.issueCode(number!)));
    const { code } = await h.client('disclosure').issueCode(number!);
    // A raw HTTP/2 client that never reads its response, so flow control holds the server back (grpc-js
    // clients read ahead into their own buffers whether or not the application reads).
    const f = pkiFiles(join(h.dataDir, 'pki'));
    const session = connect(`https://localhost:${h.gw.address.slice(h.gw.address.lastIndexOf(':') + 1)}`, {
      ca: readFileSync(f.caCert),
      cert: readFileSync(f.agencyCert('disclosure')),
      key: readFileSync(f.agencyKey('disclosure')),
    });
    try {
      const body = toBinary(ListAccessRecordsRequestSchema, create(ListAccessRecordsRequestSchema, { code, pageSize: 1000 }));
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      frame.set(body, 5);
      const req = session.request({
        ':method': 'POST',
        ':path': '/linkage.v1.AccessRecords/ListAccessRecords',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.pause();
      req.end(frame);
      await until(() => callsInFlight() === 1);
      await sleep(500);
      expect(callsInFlight(), 'the server should be held by the unread stream').toBe(1);
      req.close(constants.NGHTTP2_CANCEL);
      await until(() => callsInFlight() === 0);
    } finally {
      session.destroy();
    }
    // Read to the end, the same page arrives whole.
    const all = await h.client('disclosure').listRecords({ code, pageSize: 1000 });
    expect(all.length).toBe(1000);
  }, 30_000);
});

describe('in-flight limits per agency', () => {
  let small: Harness;
  // This gateway's own count: each server owns its in-flight budget.
  const callsInFlight = () => small.gw.inFlight.total;
  beforeAll(async () => {
    small = await startHarness({ env: { LINKGW_MAX_IN_FLIGHT: '6', LINKGW_MAX_IN_FLIGHT_PER_AGENCY: '2' } });
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('refuse an agency that holds its share, and no other agency', async () => {
    const pension = small.client('pension');
    const held = [pension.issueStream(), pension.issueStream()];
    const ended = held.map((c) => statusOf(c));
    for (const c of held) c.on('data', () => undefined);
    await until(() => callsInFlight() === 2);
    const refused = await pension.issueCode(population(1, 9)[0]!).then(
      () => null,
      (e: ServiceError) => e,
    );
    expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(refused?.details).toMatch(/this agency has too many calls in progress/);
    await expect(small.client('tax').issueCode(population(1, 9)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
    for (const c of held) c.cancel();
    expect(await Promise.all(ended)).toEqual([status.CANCELLED, status.CANCELLED]);
    await until(() => callsInFlight() === 0);
    await expect(pension.issueCode(population(1, 9)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
  });
});
