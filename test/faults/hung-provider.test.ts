/**
 * Issue 20, item 7: one hung provider must cost only the queries to it. As the fault acts: the employment
 * office's registry address is a TCP server that accepts connections and never answers (the gateway's TLS
 * handshake to it hangs), while the pension office answers. With LINKGW_MAX_IN_FLIGHT=64 (32 a requester),
 * welfare keeps 28 queries to the hung office going and 6 to the pension office. Before each provider had its
 * own budget, the hung queries held 28 of welfare's 32 slots until the provider timeout, and its pension queries
 * were refused (RESOURCE_EXHAUSTED) whenever more than 4 were in flight. Now the hung office holds at most its
 * budget (16), queries past it are refused at once, its breaker opens once its calls time out, and then they
 * fail at once; the pension queries are all answered. When the office comes back, a probe closes its breaker.
 *
 * The welfare client behaves as a client should: after a refusal it waits the `retry-after-ms` it was given,
 * with jitter. Every answer that names a record (success, NOT_FOUND, failures, refusals by the provider's
 * budget or breaker) has that record in the store.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { bootstrapDevPki, pkiFiles } from '../../src/pki/dev-pki.js';
import { startSimulatedProviders, type SimulatedProviders } from '../../src/providers/simulated-provider.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const HUNG_WORKERS = 28;
const HEALTHY_WORKERS = 6;

interface Outcome {
  readonly code: number;
  readonly recordId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly details: string;
}

let dataDir: string;
let h: Harness;
let pension: SimulatedProviders;
let employmentBack: SimulatedProviders | undefined;
let hung: Server;
const hungSockets = new Set<Socket>();
let hungAddress: string;
/** The load the test makes: stopped by the test, or by the teardown if the test failed first. */
const load = { running: true, workers: [] as Promise<void>[] };
/** A bound on the calls one kind of worker makes, whatever happens. */
const MAX_CALLS = 5000;

function closeHung(): Promise<void> {
  for (const s of hungSockets) s.destroy();
  return new Promise((r) => hung.close(() => r()));
}

beforeAll(async () => {
  dataDir = tempDir('linkgw-hung-');
  const pkiDir = join(dataDir, 'pki');
  const registry = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; certificate: { commonName: string }; provider?: { address: string } }[] };
  await bootstrapDevPki(pkiDir, `${dataDir}-dev-ca`, new Map(registry.agencies.map((a) => [a.id, a.certificate.commonName])));
  const f = pkiFiles(pkiDir);
  pension = await startSimulatedProviders([{ id: 'pension', cert: f.agencyCert('pension'), key: f.agencyKey('pension'), listen: '127.0.0.1:0' }], { caCert: f.caCert });
  // Accepts every connection, reads what comes, answers nothing.
  hung = createServer((s) => {
    hungSockets.add(s);
    s.on('close', () => hungSockets.delete(s));
    s.resume();
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()));
  hungAddress = `127.0.0.1:${(hung.address() as { port: number }).port}`;
  for (const a of registry.agencies) {
    if (a.id === 'pension') a.provider = { address: pension.addresses.get('pension')! };
    if (a.id === 'employment') a.provider = { address: hungAddress };
  }
  const agenciesFile = join(dataDir, 'agencies.json');
  writeFileSync(agenciesFile, JSON.stringify(registry));
  h = await startHarness({
    dataDir,
    env: {
      LINKGW_SIMULATE: '0',
      LINKGW_AGENCIES: agenciesFile,
      LINKGW_MAX_IN_FLIGHT: '64',
      LINKGW_PROVIDER_TIMEOUT_MS: '1000',
      LINKGW_PROVIDER_BREAKER_OPEN_MS: '300',
    },
  });
});

afterAll(async () => {
  load.running = false;
  await Promise.all(load.workers);
  await h?.stop();
  await employmentBack?.close();
  await pension?.close();
  if (hung?.listening) await closeHung();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}-dev-ca`, { recursive: true, force: true });
});

async function gauge(name: string, labels: string): Promise<number | undefined> {
  const text = await h.gw.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('a provider that accepts connections and never answers', () => {
  it("costs only the queries to it: welfare's queries to a healthy provider are all answered, and the hung one's breaker opens, then closes when it is back", async () => {
    const welfare = h.client('welfare');
    const [person] = population(1, 2020);
    const { code } = await welfare.issueCode(person!);
    const ask = async (provider: 'employment' | 'pension'): Promise<Outcome> => {
      const req =
        provider === 'employment'
          ? { code, provider, procedure: 'welfare.public-assistance', item: 'unemployment-benefit' }
          : { code, provider, procedure: 'welfare.public-assistance', item: 'pension-benefit' };
      try {
        const r = await welfare.queryInformation(req, { deadlineMs: 10_000 });
        return { code: status.OK, recordId: r.recordId, retryAfterMs: undefined, details: '' };
      } catch (e) {
        const err = e as ServiceError;
        const id = err.metadata?.get('x-record-id')[0];
        const retry = err.metadata?.get('retry-after-ms')[0];
        return { code: err.code, recordId: id === undefined ? undefined : String(id), retryAfterMs: retry === undefined ? undefined : Number(retry), details: err.details };
      }
    };

    // Welfare's queries to the hung office, each worker one at a time, honouring retry-after-ms (with jitter).
    const hungOutcomes: Outcome[] = [];
    const hungWorkers = Array.from({ length: HUNG_WORKERS }, async () => {
      while (load.running && hungOutcomes.length < MAX_CALLS) {
        const o = await ask('employment');
        hungOutcomes.push(o);
        if (o.retryAfterMs !== undefined) await new Promise((r) => setTimeout(r, o.retryAfterMs! + Math.random() * 100));
      }
    });
    // The hung office's budget fills (16 of welfare's 32 slots), and the queries past it are refused at once.
    await until(async () => (await gauge('linkgw_provider_calls_in_flight', 'provider="employment"')) === 16 && hungOutcomes.length >= HUNG_WORKERS - 16, 10_000);
    expect(hungOutcomes.filter((o) => o.code === status.RESOURCE_EXHAUSTED && /as many queries in progress/.test(o.details)).length).toBeGreaterThanOrEqual(HUNG_WORKERS - 16);

    // Meanwhile, and on through the breaker opening, welfare's queries to the pension office.
    const healthyOutcomes: Outcome[] = [];
    const healthyWorkers = Array.from({ length: HEALTHY_WORKERS }, async () => {
      while (load.running && healthyOutcomes.length < MAX_CALLS) healthyOutcomes.push(await ask('pension'));
    });
    load.workers.push(...hungWorkers, ...healthyWorkers);
    const downRefusals = () => hungOutcomes.filter((o) => o.code === status.UNAVAILABLE && /not answering/.test(o.details)).length;
    await until(async () => downRefusals() >= 20 && healthyOutcomes.length >= 300, 30_000);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="employment",state="closed"')).toBe(0);
    load.running = false;
    await Promise.all([...hungWorkers, ...healthyWorkers]);

    const tally = (os: Outcome[]) => {
      const t: Record<string, number> = {};
      for (const o of os) t[status[o.code]!] = (t[status[o.code]!] ?? 0) + 1;
      return t;
    };
    console.log(`hung office: ${JSON.stringify(tally(hungOutcomes))}; pension office: ${JSON.stringify(tally(healthyOutcomes))}`);
    // Not one pension query refused or failed: each is answered (the simulated office knows most persons).
    expect(healthyOutcomes.filter((o) => o.code !== status.OK && o.code !== status.NOT_FOUND)).toEqual([]);
    // The hung office's queries: timed out at the provider timeout (the budget's 16, and the probes), refused
    // by its budget, or refused by its breaker; never anything else, never the requester's own cap.
    expect(hungOutcomes.filter((o) => ![status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.UNAVAILABLE].includes(o.code))).toEqual([]);
    expect(hungOutcomes.filter((o) => o.code === status.DEADLINE_EXCEEDED).length).toBeGreaterThanOrEqual(5);
    for (const o of hungOutcomes.filter((o) => o.code !== status.DEADLINE_EXCEEDED)) expect(o.retryAfterMs).toBeGreaterThan(0);

    // Every answer names its record, and every such record is in the store.
    const answered = [...hungOutcomes, ...healthyOutcomes];
    expect(answered.filter((o) => o.recordId === undefined)).toEqual([]);
    const missing: string[] = [];
    for (let i = 0; i < answered.length; i += 50)
      await Promise.all(answered.slice(i, i + 50).map(async (o) => ((await h.gw.store.recordById(o.recordId!)) === null ? missing.push(o.recordId!) : undefined)));
    expect(missing).toEqual([]);

    // The office comes back on its address: a probe is let through within the cool-down, and its answer closes
    // the breaker (the gateway's channel reconnects within its capped backoff).
    await closeHung();
    const f = pkiFiles(join(dataDir, 'pki'));
    employmentBack = await startSimulatedProviders([{ id: 'employment', cert: f.agencyCert('employment'), key: f.agencyKey('employment'), listen: hungAddress }], { caCert: f.caCert });
    let back: Outcome | undefined;
    await until(async () => {
      const o = await ask('employment');
      if (o.code === status.OK || o.code === status.NOT_FOUND) back = o;
      else await new Promise((r) => setTimeout(r, o.retryAfterMs ?? 100));
      return back !== undefined;
    }, 20_000);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="employment",state="closed"')).toBe(1);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="pension",state="closed"')).toBe(1);
    expect([status.OK, status.NOT_FOUND]).toContain((await ask('employment')).code);
    await until(async () => (await gauge('linkgw_provider_calls_in_flight', 'provider="employment"')) === 0);
    const refusals = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_refusals_total');
    expect(refusals).toMatch(/reason="provider_busy"} [1-9]/);
    expect(refusals).toMatch(/reason="provider_down"} [1-9]/);
    expect(refusals).not.toMatch(/reason="agency_busy"/);
    // Each change of the breaker is logged once, naming the provider (and nothing about any person).
    const changes = h.logs().split('\n').filter((l) => /"msg":"provider (down|up)/.test(l));
    expect(changes.some((l) => l.includes('provider down') && l.includes('"provider":"employment"'))).toBe(true);
    expect(changes.some((l) => l.includes('provider up') && l.includes('"provider":"employment"'))).toBe(true);
    expect(changes.some((l) => l.includes('"provider":"pension"'))).toBe(false);
  });
});
