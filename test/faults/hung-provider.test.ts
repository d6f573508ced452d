/**
 * Issue 20, item 7: one hung provider must cost only the queries to it. As the fault acts: the tax office's
 * registry address is a TCP server that accepts connections and never answers (the gateway's TLS handshake to
 * it hangs), while the pension office answers. With LINKGW_MAX_IN_FLIGHT=64 (32 a requester, 12 guaranteed to
 * each of the 5 agencies, 16 kept back for agencies within their guarantee), the pension office keeps 28
 * queries to the tax office going and welfare 20, while welfare also asks the pension office, 6 at a time.
 * Welfare never has more calls than its own cap: whatever is refused to it is refused because of the hung
 * provider.
 *
 * Before each provider had its own budget, the 48 hung queries held their slots until the provider timeout, the
 * free slots fell to the 16 kept back, and every welfare query to the pension office past its guarantee was
 * refused (RESOURCE_EXHAUSTED, "over its share"). Now the tax office holds at most its budget (16), queries past
 * it are refused at once, its breaker opens once its calls time out and they fail at once; every welfare query
 * to the pension office is answered. When the tax office comes back, a probe closes its breaker.
 *
 * Clients behave as clients should: after a refusal they wait the `retry-after-ms` they were given, with
 * jitter. Every answer from the service (success, NOT_FOUND, failures, refusals by the provider's budget or
 * breaker) names its record, and the record is in the store; only the in-flight step's own refusals, made before
 * a request is read, have none (and only the hung queries may get those).
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgencyClient } from '../../src/cli/agency-client.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { bootstrapDevPki, pkiFiles } from '../../src/pki/dev-pki.js';
import { startSimulatedProviders, type SimulatedProviders } from '../../src/providers/simulated-provider.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

const PENSION_HUNG_WORKERS = 28;
const WELFARE_HUNG_WORKERS = 20;
const WELFARE_HEALTHY_WORKERS = 6;
/** What the in-flight step says when it refuses a call before the request is read (src/limits/in-flight.ts). */
const IN_FLIGHT_REFUSAL = /too many calls in progress|over its share|at capacity/;

interface Outcome {
  readonly code: number;
  readonly recordId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly details: string;
}

let dataDir: string;
let h: Harness;
let pension: SimulatedProviders;
let taxBack: SimulatedProviders | undefined;
let hung: Server;
const hungSockets = new Set<Socket>();
let hungAddress: string;
/** The load the test makes: stopped by the test, or by the teardown if the test failed first. */
const load = { running: true, workers: [] as Promise<void>[] };
/** A bound on the calls each kind of worker makes, whatever happens. */
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
    if (a.id === 'tax') a.provider = { address: hungAddress };
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
  await taxBack?.close();
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

async function ask(client: AgencyClient, req: { code: string; provider: string; procedure: string; item: string }): Promise<Outcome> {
  try {
    const r = await client.queryInformation(req, { deadlineMs: 10_000 });
    return { code: status.OK, recordId: r.recordId, retryAfterMs: undefined, details: '' };
  } catch (e) {
    const err = e as ServiceError;
    const id = err.metadata?.get('x-record-id')[0];
    const retry = err.metadata?.get('retry-after-ms')[0];
    return { code: err.code, recordId: id === undefined ? undefined : String(id), retryAfterMs: retry === undefined ? undefined : Number(retry), details: err.details };
  }
}

/** `n` workers asking one query after another, each waiting any retry-after-ms it is given (with jitter). */
function workers(n: number, into: Outcome[], query: () => Promise<Outcome>): void {
  for (let i = 0; i < n; i++)
    load.workers.push(
      (async () => {
        while (load.running && into.length < MAX_CALLS) {
          const o = await query();
          into.push(o);
          if (o.retryAfterMs !== undefined) await new Promise((r) => setTimeout(r, o.retryAfterMs! + Math.random() * 100));
        }
      })(),
    );
}

const tally = (os: Outcome[]) => {
  const t: Record<string, number> = {};
  for (const o of os) t[status[o.code]!] = (t[status[o.code]!] ?? 0) + 1;
  return t;
};

describe('a provider that accepts connections and never answers', () => {
  it("costs only the queries to it: welfare's queries to a healthy provider are all answered, and the hung one's breaker opens, then closes when it is back", async () => {
    const [person] = population(1, 2020);
    const welfare = h.client('welfare');
    const pensionOffice = h.client('pension');
    const welfareCode = (await welfare.issueCode(person!)).code;
    const pensionCode = (await pensionOffice.issueCode(person!)).code;
    const welfareToTax = { code: welfareCode, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' };
    const pensionToTax = { code: pensionCode, provider: 'tax', procedure: 'pension.eligibility', item: 'income' };
    const welfareToPension = { code: welfareCode, provider: 'pension', procedure: 'welfare.public-assistance', item: 'pension-benefit' };

    // The queries to the hung office. Its budget fills (16 calls), and the queries past it are refused at once.
    const hungOutcomes: Outcome[] = [];
    workers(PENSION_HUNG_WORKERS, hungOutcomes, () => ask(pensionOffice, pensionToTax));
    workers(WELFARE_HUNG_WORKERS, hungOutcomes, () => ask(welfare, welfareToTax));
    const busy = () => hungOutcomes.filter((o) => o.code === status.RESOURCE_EXHAUSTED && /as many queries in progress/.test(o.details)).length;
    await until(async () => (await gauge('linkgw_provider_calls_in_flight', 'provider="tax"')) === 16 && busy() >= 16, 10_000);

    // Meanwhile, and on through the breaker opening, welfare's queries to the pension office.
    const healthyOutcomes: Outcome[] = [];
    workers(WELFARE_HEALTHY_WORKERS, healthyOutcomes, () => ask(welfare, welfareToPension));
    const down = () => hungOutcomes.filter((o) => o.code === status.UNAVAILABLE && /not answering/.test(o.details)).length;
    await until(async () => down() >= 20 && healthyOutcomes.length >= 300, 30_000);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="tax",state="closed"')).toBe(0);
    load.running = false;
    await Promise.all(load.workers);

    const inFlightRefusals = hungOutcomes.filter((o) => o.recordId === undefined);
    console.log(`hung office: ${JSON.stringify(tally(hungOutcomes))} (${inFlightRefusals.length} refused by the in-flight step); pension office: ${JSON.stringify(tally(healthyOutcomes))}`);
    // Not one pension query refused or failed: each is answered (the simulated office knows most persons).
    expect(healthyOutcomes.filter((o) => o.code !== status.OK && o.code !== status.NOT_FOUND)).toEqual([]);
    // The hung office's queries: timed out at the provider timeout (the budget's 16, and the probes), refused by
    // its budget, or by its breaker, each with retry-after-ms.
    expect(hungOutcomes.filter((o) => ![status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.UNAVAILABLE].includes(o.code))).toEqual([]);
    expect(hungOutcomes.filter((o) => o.code === status.DEADLINE_EXCEEDED).length).toBeGreaterThanOrEqual(5);
    for (const o of hungOutcomes.filter((o) => o.code !== status.DEADLINE_EXCEEDED)) expect(o.retryAfterMs).toBeGreaterThan(0);

    // Every answer from the service names its record, and every such record is in the store.
    expect(inFlightRefusals.filter((o) => o.code !== status.RESOURCE_EXHAUSTED || !IN_FLIGHT_REFUSAL.test(o.details))).toEqual([]);
    const answered = [...hungOutcomes, ...healthyOutcomes].filter((o) => o.recordId !== undefined);
    expect(answered.length).toBe(hungOutcomes.length + healthyOutcomes.length - inFlightRefusals.length);
    const missing: string[] = [];
    for (let i = 0; i < answered.length; i += 50)
      await Promise.all(answered.slice(i, i + 50).map(async (o) => ((await h.gw.store.recordById(o.recordId!)) === null ? missing.push(o.recordId!) : undefined)));
    expect(missing).toEqual([]);

    // The office comes back on its address: a probe is let through within the cool-down, and its answer closes
    // the breaker (the gateway's channel reconnects within its capped backoff).
    await closeHung();
    const f = pkiFiles(join(dataDir, 'pki'));
    taxBack = await startSimulatedProviders([{ id: 'tax', cert: f.agencyCert('tax'), key: f.agencyKey('tax'), listen: hungAddress }], { caCert: f.caCert });
    let back: Outcome | undefined;
    await until(async () => {
      const o = await ask(welfare, welfareToTax);
      if (o.code === status.OK || o.code === status.NOT_FOUND) back = o;
      else await new Promise((r) => setTimeout(r, o.retryAfterMs ?? 100));
      return back !== undefined;
    }, 20_000);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="tax",state="closed"')).toBe(1);
    expect(await gauge('linkgw_provider_breaker_state', 'provider="pension",state="closed"')).toBe(1);
    expect([status.OK, status.NOT_FOUND]).toContain((await ask(pensionOffice, pensionToTax)).code);
    await until(async () => (await gauge('linkgw_provider_calls_in_flight', 'provider="tax"')) === 0);
    const refusals = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_refusals_total');
    expect(refusals).toMatch(/reason="provider_busy"} [1-9]/);
    expect(refusals).toMatch(/reason="provider_down"} [1-9]/);
    // Each change of the breaker is logged once, naming the provider (and nothing about any person).
    const changes = h.logs().split('\n').filter((l) => /"msg":"provider (down|up)/.test(l));
    expect(changes.some((l) => l.includes('provider down') && l.includes('"provider":"tax"'))).toBe(true);
    expect(changes.some((l) => l.includes('provider up') && l.includes('"provider":"tax"'))).toBe(true);
    expect(changes.some((l) => l.includes('"provider":"pension"'))).toBe(false);
  });
});
