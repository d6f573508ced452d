/**
 * One bulk IssueCodes message through the server's own path, in process: the server's deserializer, the
 * stream handler of GatewayService (pacer off), the engine of the default configuration (auto: messages of
 * 10,000 on the worker pool, one thread as on a 2-core machine) and the response serializer, with `--inflight`
 * messages at a time as 4 streams keep them. The record writer is a stub that resolves at once (the record
 * store's side is measured elsewhere), so this is the CPU side of bulk issuance alone.
 *
 * Prints CPU-µs per code: the event loop's thread (from /proc/self/task/PID/stat), the whole process (all
 * threads, process.cpuUsage) and the loop's busy time (event-loop utilisation), and codes/s of wall time.
 * Compare two builds in one run, alternating (A B A B), on the same machine, with the young generation the
 * gateway runs with (bench/budget.json nodeFlags; garbage costs far more with 4 MB semi-spaces):
 *
 *   npm run build && NODE_OPTIONS=--max-semi-space-size=4 npx tsx bench/micro/bulk-message.bench.ts \
 *     [--dist DIR] [--messages 300] [--inflight 8] [--engine auto|pool]
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { population, withBadCheckDigit } from '../../test/helpers/population.js';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: join(import.meta.dirname, '..', '..', 'dist') },
    messages: { type: 'string', default: '300' },
    inflight: { type: 'string', default: '8' },
    engine: { type: 'string', default: 'auto' },
  },
});
const dist = resolve(args.dist!);
const MESSAGES = Number(args.messages);
const INFLIGHT = Number(args.inflight);
const BATCH = 10_000;

const load = async <T>(p: string): Promise<T> => (await import(pathToFileURL(join(dist, p)).href)) as T;
const { serverDefinition } = await load<typeof import('../../src/grpc/service-definition.js')>('grpc/service-definition.js');
const { LinkageGateway, IssueCodesRequestSchema } = await load<typeof import('../../src/gen/linkage/v1/gateway_pb.js')>('gen/linkage/v1/gateway_pb.js');
const { GatewayService } = await load<typeof import('../../src/service/gateway-service.js')>('service/gateway-service.js');
const { SubjectKeys } = await load<typeof import('../../src/core/subject-key.js')>('core/subject-key.js');
const { InlineEngine } = await load<typeof import('../../src/engine/mapping-engine.js')>('engine/mapping-engine.js');
const { PooledEngine } = await load<typeof import('../../src/engine/pooled-engine.js')>('engine/pooled-engine.js');
const { AutoEngine } = await load<typeof import('../../src/engine/auto-engine.js')>('engine/auto-engine.js');
const { silentLogger } = await load<typeof import('../../src/log/logger.js')>('log/logger.js');

const keys = { current: 1, masters: new Map([[1, randomBytes(32)]]), subjectSecret: randomBytes(32) };
const pool = await PooledEngine.create(keys, { threads: 1 });
const engine = args.engine === 'pool' ? pool : new AutoEngine(new InlineEngine(keys), pool);
let persons = 0;
const writer = {
  append: async (draft: { subjects?: readonly string[] }) => {
    persons += draft.subjects?.length ?? 0;
  },
};
const service = new GatewayService({
  engine,
  subjects: new SubjectKeys(keys.subjectSecret),
  writer,
  policy: () => {
    throw new Error('not used by IssueCodes');
  },
  providers: {} as never,
  providerTimeoutMs: 1000,
} as unknown as ConstructorParameters<typeof GatewayService>[0]);
const ctx = {
  agency: { id: 'pension', roles: new Set(['requester']) },
  method: 'IssueCodes',
  deadline: Infinity,
  signal: new AbortController().signal,
  requestId: undefined,
  log: silentLogger,
} as unknown as Parameters<typeof service.issueStream>[0];

const def = serverDefinition(LinkageGateway).issueCodes!;
// Four different messages of 10,000 numbers, one in a thousand with a bad check digit.
const requests = Array.from({ length: 4 }, (_, k) =>
  Buffer.from(toBinary(IssueCodesRequestSchema, create(IssueCodesRequestSchema, { personalNumbers: population(BATCH, 100 + k).map((n, i) => (i % 1000 === 7 ? withBadCheckDigit(n) : n)) }))),
);

let sentBytes = 0;
async function run(messages: number): Promise<void> {
  const handler = service.issueStream(ctx);
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < messages) {
        const req = def.requestDeserialize(requests[next++ % requests.length]!);
        const res = await handler(req as never)();
        sentBytes += def.responseSerialize(res).length;
      }
    }),
  );
}

/** utime + stime of the event loop's thread, in µs. */
function loopCpuUs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // fields 14 and 15, in clock ticks (USER_HZ = 100)
}

await run(40); // warm-up: JIT, the worker's codec and ciphers
persons = 0;
sentBytes = 0;
const loop0 = loopCpuUs();
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const t0 = performance.now();
await run(MESSAGES);
const wall = performance.now() - t0;
const elu = performance.eventLoopUtilization(elu0);
const cpu = process.cpuUsage(cpu0);
const loop = loopCpuUs() - loop0;
await engine.close();

const codes = MESSAGES * BATCH;
const r2 = (x: number) => Math.round(x * 100) / 100;
console.log(
  JSON.stringify({
    node: process.version,
    nodeOptions: process.env.NODE_OPTIONS ?? '',
    dist,
    engine: args.engine,
    messages: MESSAGES,
    inflight: INFLIGHT,
    codes,
    'loop CPU µs/code': r2(loop / codes),
    'process CPU µs/code': r2((cpu.user + cpu.system) / codes),
    'loop busy µs/code': r2((elu.active * 1000) / codes),
    'codes/s': Math.round(codes / (wall / 1000)),
    'persons recorded': persons,
    'response bytes/code': r2(sentBytes / codes),
  }),
);
