/**
 * A bounded, seeded fuzz test (issue 8): mutated messages against every method of a real gateway over mTLS.
 * It fails on a crash (the gateway stops answering), a hang (a call that does not end before its deadline), or
 * a status that means the gateway did not handle its input (INTERNAL, UNKNOWN). Each run is reproducible from
 * its seed (printed on failure).
 *
 *   LINKGW_FUZZ_ITERATIONS   calls per run (default 2,000; CI uses the default)
 *   LINKGW_FUZZ_SEED         the PRNG seed (default: fixed, so CI runs are repeatable)
 *
 * A longer run: `LINKGW_FUZZ_ITERATIONS=100000 npx vitest run test/hostile/fuzz.test.ts`.
 */
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { makeGenericClientConstructor, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckRequestSchema } from '../../src/gen/grpc/health/v1/health_pb.js';
import { ServerReflectionRequestSchema } from '../../src/gen/grpc/reflection/v1/reflection_pb.js';
import {
  IssueCodeRequestSchema,
  IssueCodesRequestSchema,
  QueryInformationRequestSchema,
  ReportWrongBindingRequestSchema,
} from '../../src/gen/linkage/v1/gateway_pb.js';
import { ListAccessRecordsRequestSchema } from '../../src/gen/linkage/v1/records_pb.js';
import { clientOptionsFor } from '../../src/grpc/channel-options.js';
import { channelCredentials } from '../../src/grpc/tls.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

const ITERATIONS = Number(process.env.LINKGW_FUZZ_ITERATIONS ?? 2000);
const SEED = Number(process.env.LINKGW_FUZZ_SEED ?? 0x5eed_2026);
const CONCURRENCY = 8;

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Target {
  readonly path: string;
  readonly stream: 'unary' | 'server' | 'bidi';
  readonly agency: string;
  readonly seeds: Buffer[];
}

const bin = <D extends DescMessage>(d: D, init: MessageInitShape<D>) => Buffer.from(toBinary(d, create(d, init)));

function mutate(rand: () => number, seed: Buffer): Buffer {
  const b = Buffer.from(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  switch (pick(9)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + pick(8); i < n && b.length; i++) b[pick(b.length)]! ^= 1 << pick(8);
      return b;
    case 1: // truncate
      return b.subarray(0, pick(b.length + 1));
    case 2: // random bytes
      return Buffer.from(Array.from({ length: pick(64) }, () => pick(256)));
    case 3: // insert bytes
      return Buffer.concat([b.subarray(0, pick(b.length + 1)), Buffer.from(Array.from({ length: 1 + pick(16) }, () => pick(256))), b.subarray(pick(b.length + 1))]);
    case 4: // a field repeated many times
      return Buffer.concat(Array.from({ length: 1 + pick(200) }, () => b));
    case 5: // a length-delimited field claiming a huge length
      return Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), b]);
    case 6: // an unknown field of every wire type
      return Buffer.concat([b, Buffer.from([0xf8, 0x7f, pick(256), 0xfd, 0x7f, 1, 2, 3, 4, 0xfa, 0x7f, 3, 97, 98, 99])]);
    case 7: // a deeply nested group start
      return Buffer.concat([Buffer.alloc(100, 0x0b), b]);
    default: // overwrite a run with a string of digits or look-alikes
      {
        const s = Buffer.from(['０１２３４５６７８９０１', '62149832025７', '\u0000'.repeat(12), '9'.repeat(500)][pick(4)]!);
        s.copy(b, pick(Math.max(1, b.length)));
      }
      return b;
  }
}

let h: Harness;
let targets: Target[];
const clients = new Map<string, Client>();
const Raw = makeGenericClientConstructor({}, 'Raw');

function rawClient(agency: string): Client {
  let c = clients.get(agency);
  if (!c) {
    const f = pkiFiles(`${h.dataDir}/pki`);
    c = new Raw(h.gw.address, channelCredentials({ ca: f.caCert, cert: f.agencyCert(agency), key: f.agencyKey(agency) }), clientOptionsFor(h.gw.address));
    clients.set(agency, c);
  }
  return c;
}

/** One call with raw request bytes; resolves with its status code (0 for OK). */
function call(t: Target, messages: Buffer[], rand: () => number): Promise<number> {
  const c = rawClient(t.agency);
  const ser = (b: Buffer) => b;
  const md = new Metadata();
  if (rand() < 0.2) md.set('x-request-id', ['', 'a'.repeat(300), 'ok-1', 'sp ace', '../../etc'][Math.floor(rand() * 5)]!);
  const deadline = Date.now() + 15_000;
  return new Promise((resolve) => {
    const done = (e: ServiceError | null) => resolve(e ? e.code : status.OK);
    if (t.stream === 'unary') {
      c.makeUnaryRequest(t.path, ser, ser, messages[0]!, md, { deadline }, (e) => done(e));
    } else if (t.stream === 'server') {
      const s = c.makeServerStreamRequest(t.path, ser, ser, messages[0]!, md, { deadline });
      s.on('data', () => undefined);
      s.on('error', (e: ServiceError) => done(e));
      s.on('end', () => done(null));
    } else {
      const s = c.makeBidiStreamRequest(t.path, ser, ser, md, { deadline });
      s.on('data', () => undefined);
      let ended = false;
      s.on('error', (e: ServiceError) => (ended ? undefined : ((ended = true), done(e))));
      s.on('status', (st: { code: number }) => (ended ? undefined : ((ended = true), resolve(st.code))));
      for (const m of messages) s.write(m);
      s.end();
    }
  });
}

beforeAll(async () => {
  h = await startHarness();
  const person = population(1, 4242)[0]!;
  const welfare = (await h.client('welfare').issueCode(person)).code;
  const disclosure = (await h.client('disclosure').issueCode(person)).code;
  targets = [
    { path: '/linkage.v1.LinkageGateway/IssueCode', stream: 'unary', agency: 'pension', seeds: [bin(IssueCodeRequestSchema, { personalNumber: person })] },
    {
      path: '/linkage.v1.LinkageGateway/IssueCodes',
      stream: 'bidi',
      agency: 'tax',
      seeds: [bin(IssueCodesRequestSchema, { personalNumbers: population(20, 4243) }), bin(IssueCodesRequestSchema, { personalNumbers: [person, 'x', '000000000000'] })],
    },
    {
      path: '/linkage.v1.LinkageGateway/QueryInformation',
      stream: 'unary',
      agency: 'welfare',
      seeds: [bin(QueryInformationRequestSchema, { code: welfare, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' })],
    },
    { path: '/linkage.v1.LinkageGateway/ReportWrongBinding', stream: 'unary', agency: 'welfare', seeds: [bin(ReportWrongBindingRequestSchema, { code: welfare, since: timestampFromMs(Date.now() - 1000) })] },
    {
      path: '/linkage.v1.AccessRecords/ListAccessRecords',
      stream: 'server',
      agency: 'disclosure',
      seeds: [bin(ListAccessRecordsRequestSchema, { code: disclosure, pageSize: 5, from: timestampFromMs(0), to: timestampFromMs(Date.now() + 1000) })],
    },
    { path: '/grpc.health.v1.Health/Check', stream: 'unary', agency: 'pension', seeds: [bin(HealthCheckRequestSchema, { service: 'linkage.v1.LinkageGateway' })] },
    {
      path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      stream: 'bidi',
      agency: 'pension',
      seeds: [bin(ServerReflectionRequestSchema, { messageRequest: { case: 'fileContainingSymbol', value: 'linkage.v1.LinkageGateway' } })],
    },
  ];
}, 60_000);

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await h?.stop();
});

describe('fuzzing every method with mutated messages', () => {
  it(`survives ${ITERATIONS} calls with no crash, no hang, no INTERNAL or UNKNOWN (seed ${SEED})`, async () => {
    const rand = prng(SEED);
    const bad: string[] = [];
    const seen = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < ITERATIONS) {
        const i = next++;
        const t = targets[Math.floor(rand() * targets.length)]!;
        const n = t.stream === 'bidi' ? 1 + Math.floor(rand() * 3) : 1;
        const messages = Array.from({ length: n }, () => mutate(rand, t.seeds[Math.floor(rand() * t.seeds.length)]!));
        const code = await call(t, messages, rand);
        const key = `${t.path.split('/')[2]} ${status[code]}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (code === status.INTERNAL || code === status.UNKNOWN || code === status.DEADLINE_EXCEEDED || code === status.UNAVAILABLE)
          bad.push(`#${i} ${t.path} → ${status[code]} (messages: ${messages.map((m) => m.toString('base64')).join(' ')})`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(bad, `seed ${SEED}; statuses seen: ${JSON.stringify(Object.fromEntries(seen))}`).toEqual([]);
    // Still serving, and nothing left running.
    await expect(h.client('pension').issueCode(population(1, 4244)[0]!)).resolves.toMatchObject({ code: expect.any(String) });
    expect(h.gw.inFlight.total).toBeLessThanOrEqual(1);
  }, 300_000);
});
