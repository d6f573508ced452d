/**
 * The gateway on a real Redis Cluster (LINKGW_REDIS_URL=redis+cluster://…, 3 masters and 3 replicas from
 * test/helpers/redis-cluster.ts), seen from agencies:
 *   - a gateway killed mid-request leaves an in-progress marker that blocks retries only until that request's
 *     deadline (not for a minute);
 *   - traffic goes on while the master holding the hot key (the requester's rate-limit bucket) is killed and
 *     its replica takes over: no call fails, no Redis operation waits past the deadline, Redis state comes back;
 *   - with a slot range down (a master and its replica killed), calls still succeed on local state.
 *
 * Redis waits are timed at the gateway's own connection (its `run`), and compared with the deadline plus the
 * event loop's measured lateness (timers cannot fire earlier than the loop lets them).
 */
import { status } from '@grpc/grpc-js';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { pkiFiles } from '../../src/pki/dev-pki.js';
import { startSimulatedProviders } from '../../src/providers/simulated-provider.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { keySlot } from '../../src/redis/key-slot.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { RedisCluster, type ClusterNode } from '../helpers/redis-cluster.js';
import { killServed, serve } from '../helpers/serve-process.js';
import { until } from '../helpers/wait.js';

let cluster: RedisCluster;
let a: Harness;
let enrolled: string[];
const people = population(2000, 53);
const waits: number[] = [];

async function metric(h: Harness, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://${h.gw.opsAddress}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (pattern.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Each node's state changes are logged once each: for every node, 'down' and 'up' lines alternate. */
function expectAlternating(lines: readonly { msg: string; node?: string }[]): void {
  const last = new Map<string, string>();
  for (const l of lines) {
    const node = l.node ?? '(whole)';
    const to = /\bup\b/.test(l.msg) ? 'up' : 'down';
    expect(last.get(node), `${node} logged ${to} twice in a row`).not.toBe(to);
    last.set(node, to);
  }
}

/** Times every Redis operation of the gateway, at its connection. */
function timeRedis(h: Harness, into: number[]): void {
  const r = h.gw.redis!;
  const run = r.run.bind(r);
  r.run = (async (op, key) => {
    const t0 = performance.now();
    try {
      return await run(op, key);
    } finally {
      into.push(performance.now() - t0);
    }
  }) as typeof r.run;
}

/** Queries (each with its own x-request-id: idempotency) and issuances (rate limit, cache) until `stop`. */
async function traffic(loop: string, stop: () => boolean, errors: string[]): Promise<number> {
  const pension = a.client('pension');
  const codes = await pension.issueBulk(enrolled.slice(0, 20));
  let done = 0;
  let i = 0;
  const fail = (e: { code: number; details: string }) => void errors.push(`${e.code} ${e.details}`);
  while (!stop()) {
    i++;
    const code = codes[i % codes.length]!.code;
    await pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }, { requestId: `${loop}-${i}` }).then(() => done++, fail);
    await pension.issueCode(people[(i * 7) % people.length]!).then(() => done++, fail);
  }
  return done;
}

/** Runs traffic from two loops while `during` runs; returns the calls done. Fails the test on any failed call. */
async function underTraffic(during: () => Promise<void>): Promise<number> {
  const errors: string[] = [];
  let stopping = false;
  const loops = [traffic(`l1-${Date.now()}`, () => stopping, errors), traffic(`l2-${Date.now()}`, () => stopping, errors)];
  let done = 0;
  try {
    await during();
  } finally {
    stopping = true;
    done = (await Promise.all(loops)).reduce((x, y) => x + y, 0);
  }
  expect(errors).toEqual([]);
  return done;
}

beforeAll(async () => {
  cluster = await RedisCluster.start();
  a = await startHarness({
    env: {
      LINKGW_REDIS_URL: cluster.url,
      LINKGW_CACHE: 'local,redis',
      LINKGW_RATE_LIMIT: 'default=100000/100000',
      // A loaded CI machine can be slower than the 50 ms default while the cluster is healthy.
      LINKGW_REDIS_COMMAND_TIMEOUT_MS: '200',
    },
  });
  await until(() => a.gw.redis!.state() === 'up', 10_000);
  timeRedis(a, waits);
  const codec = new AgencyCodec(a.gw.keyring);
  enrolled = people.filter((n) => {
    const c = checkPersonalNumber(n);
    return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
  });
}, 60_000);

afterAll(async () => {
  killServed();
  await a?.stop();
  await cluster?.stop();
});

describe('a gateway on a Redis Cluster', () => {
  it('a gateway killed mid-request blocks its retries only until that request\'s deadline', async () => {
    // Gateway C, a child process, sends tax queries to a provider that never answers in time.
    const f = pkiFiles(join(a.dataDir, 'pki'));
    let arrived = false;
    const slow = await startSimulatedProviders([{ id: 'tax', cert: f.agencyCert('tax'), key: f.agencyKey('tax'), listen: '127.0.0.1:0' }], {
      caCert: f.caCert,
      delayMs: 60_000,
      onRequest: () => void (arrived = true),
    });
    const dirC = tempDir();
    cpSync(join(a.dataDir, 'keyring.json'), join(dirC, 'keyring.json'));
    cpSync(join(a.dataDir, 'pki'), join(dirC, 'pki'), { recursive: true });
    const registry = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; provider?: { address: string } }[] };
    for (const ag of registry.agencies) if (ag.id === 'tax') ag.provider = { address: slow.addresses.get('tax')! };
    writeFileSync(join(dirC, 'agencies.json'), JSON.stringify(registry));
    const c = await serve({
      LINKGW_DATA_DIR: dirC,
      LINKGW_SIMULATE: '0',
      LINKGW_AGENCIES: join(dirC, 'agencies.json'),
      LINKGW_REDIS_URL: cluster.url,
      LINKGW_REDIS_COMMAND_TIMEOUT_MS: '200',
    });
    const clientC = new AgencyClient({ address: c.address, agency: 'pension', pkiDir: join(dirC, 'pki') });
    try {
      await until(() => /"msg":"redis up"/.test(c.log()), 10_000);
      const { code } = await a.client('pension').issueCode(enrolled[0]!);
      const q = { code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' };
      const deadlineMs = 4000;
      const sent = Date.now();
      const first = clientC.queryInformation(q, { requestId: 'crash-1', deadlineMs }).catch((e: unknown) => e);
      await until(() => arrived, 10_000);
      c.child.kill('SIGKILL');
      await new Promise((r) => (c.child.exitCode !== null || c.child.signalCode !== null ? r(null) : c.child.once('exit', r)));
      await first;

      // The dead gateway's marker is in Redis: a retry through A is refused as still in progress…
      const early = await statusOf(a.client('pension').queryInformation(q, { requestId: 'crash-1' }));
      expect(early.code).toBe(status.ABORTED);
      // …until the first attempt's deadline, and no longer (it was 60 s, whatever the deadline).
      let answered = 0;
      await until(async () => {
        try {
          await a.client('pension').queryInformation(q, { requestId: 'crash-1' });
          answered = Date.now();
          return true;
        } catch (e) {
          expect((e as { code: number }).code).toBe(status.ABORTED);
          await new Promise((r) => setTimeout(r, 100));
          return false;
        }
      }, 20_000);
      expect(answered - sent).toBeGreaterThanOrEqual(deadlineMs - 500);
      expect(answered - sent).toBeLessThan(deadlineMs + 5000);
    } finally {
      clientC.close();
      await slow.close();
    }
  }, 60_000);

  it('keeps serving while the master of the hot key fails over, within the deadline, and Redis comes back', async () => {
    const master = await cluster.masterOfSlot(keySlot('linkgw:rl:pension'));
    const before = await metric(a, /^linkgw_redis_fallbacks_total\{feature="rate-limit"/);
    waits.length = 0;
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const done = await underTraffic(async () => {
      await new Promise((r) => setTimeout(r, 500));
      await cluster.kill(master);
      await cluster.waitFailover(master);
      await until(() => a.gw.redis!.state() === 'up', 15_000);
      await new Promise((r) => setTimeout(r, 500));
    });
    lag.disable();
    expect(done).toBeGreaterThan(20);
    const bound = a.gw.redis!.deadlineMs + lag.max / 1e6 + 50;
    expect(Math.max(...waits), `bound ${bound.toFixed(0)} ms`).toBeLessThanOrEqual(bound);
    const during = await metric(a, /^linkgw_redis_fallbacks_total\{feature="rate-limit"/);
    expect(during).toBeGreaterThan(before);
    // Redis state is back: up, and the hot bucket is in Redis again (no more local decisions).
    expect(await metric(a, /^linkgw_redis_up /)).toBe(1);
    for (let i = 0; i < 5; i++) await a.client('pension').issueCode(people[i]!);
    expect(await metric(a, /^linkgw_redis_fallbacks_total\{feature="rate-limit"/)).toBe(during);
    // One log line per change of state, not one per failed call: per node, downs and ups alternate.
    const changes = a.logs().split('\n').filter((l) => /"msg":"redis (up|down|node)/.test(l)).map((l) => JSON.parse(l) as { msg: string; node?: string });
    expectAlternating(changes);
    expect(changes.some((l) => l.node === `127.0.0.1:${master.port}` && /down/.test(l.msg))).toBe(true);
  }, 90_000);

  it('with a slot range down, calls still succeed on local state within the deadline', async () => {
    let victim: ClusterNode | undefined;
    let replicas: ClusterNode[] = [];
    for (const m of await cluster.mastersExcept()) {
      replicas = (await cluster.replicasOf(m)).filter((r) => cluster.alive().includes(r));
      if (replicas.length) {
        victim = m;
        break;
      }
    }
    if (!victim) throw new Error('no master with a live replica');
    waits.length = 0;
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const done = await underTraffic(async () => {
      await new Promise((r) => setTimeout(r, 300));
      await Promise.all([victim, ...replicas].map((n) => cluster.kill(n)));
      await cluster.waitFailed([victim, ...replicas]);
      await new Promise((r) => setTimeout(r, 1000));
    });
    lag.disable();
    expect(done).toBeGreaterThan(20);
    const bound = a.gw.redis!.deadlineMs + lag.max / 1e6 + 50;
    expect(Math.max(...waits), `bound ${bound.toFixed(0)} ms`).toBeLessThanOrEqual(bound);
    expect(await metric(a, /^linkgw_redis_up /)).toBe(0);
  }, 90_000);
});
