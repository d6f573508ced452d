/**
 * Issue 8, findings 4 and 5, as hostile agencies would try them through a real gateway: two agencies holding
 * every stream they can get must leave room for the others; an agency's streams are capped; an idle stream is
 * ended; a bulk stream is paced by numbers per second, not failed.
 */
import { create } from '@bufbuild/protobuf';
import { status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueCodesRequestSchema, type IssueCodesRequest, type IssueCodesResponse } from '../../src/gen/linkage/v1/gateway_pb.js';
import { startHarness, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

type Stream = ClientDuplexStream<IssueCodesRequest, IssueCodesResponse>;

/** Opens streams for `agency` until the gateway refuses one; returns the open ones and the refusal. */
async function openUntilRefused(h: Harness, agency: string, max: number): Promise<{ open: Stream[]; refusal: ServiceError | undefined }> {
  const open: Stream[] = [];
  for (let i = 0; i < max; i++) {
    const s = h.client(agency).issueStream(60_000);
    s.on('data', () => undefined);
    const first = new Promise<ServiceError | undefined>((resolve) => {
      s.once('error', (e: ServiceError) => resolve(e));
      // An answered message means the stream was admitted.
      s.once('data', () => resolve(undefined));
    });
    s.write(create(IssueCodesRequestSchema, { personalNumbers: population(1, 500 + i) }));
    const refusal = await first;
    if (refusal) return { open, refusal };
    open.push(s);
  }
  return { open, refusal: undefined };
}

describe('shares of the in-flight budget', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { LINKGW_MAX_IN_FLIGHT: '20', LINKGW_MAX_IN_FLIGHT_PER_AGENCY: '10', LINKGW_IN_FLIGHT_RESERVE: '5', LINKGW_MAX_STREAMS_PER_AGENCY: '10' },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('two agencies holding all the streams they can get leave the others served', async () => {
    const pension = await openUntilRefused(h, 'pension', 20);
    const tax = await openUntilRefused(h, 'tax', 20);
    expect(pension.refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(tax.refusal?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(tax.refusal?.details).toMatch(/over its share/);
    // Everyone else is still served, several calls at once.
    const others = await Promise.allSettled(['welfare', 'employment', 'disclosure', 'welfare'].map((a, i) => h.client(a).issueCode(population(1, 700 + i)[0]!)));
    expect(others.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    for (const s of [...pension.open, ...tax.open]) s.cancel();
    await until(() => h.gw.inFlight.total === 0);
    const text = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_refusals_total');
    expect(text).toMatch(/reason="reserved_for_others"} [1-9]/);
  });
});

describe('streams per agency and idle streams', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { LINKGW_MAX_STREAMS_PER_AGENCY: '3', LINKGW_STREAM_IDLE_TIMEOUT_MS: '400' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('caps the streams one agency may hold, and no other agency', async () => {
    const pension = await openUntilRefused(h, 'pension', 10);
    expect(pension.open.length).toBe(3);
    expect(pension.refusal?.details).toMatch(/too many streams/);
    const tax = await openUntilRefused(h, 'tax', 1);
    expect(tax.open.length).toBe(1);
    for (const s of [...pension.open, ...tax.open]) s.cancel();
    await until(() => h.gw.inFlight.total === 0);
  });

  it('ends a stream that sends nothing, and gives its slot back', async () => {
    const s = h.client('welfare').issueStream(60_000);
    const ended = new Promise<ServiceError>((resolve) => s.on('error', resolve));
    s.on('data', () => undefined);
    await until(() => h.gw.inFlight.total === 1);
    const e = await ended;
    expect(e.code).toBe(status.DEADLINE_EXCEEDED);
    expect(e.details).toMatch(/idle stream/);
    await until(() => h.gw.inFlight.total === 0);
  });
});

describe('the bulk rate', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { LINKGW_RATE_LIMIT_BULK: 'default=5000/5000' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('paces a stream to numbers per second instead of failing it', async () => {
    const s = h.client('pension').issueStream(60_000);
    const results: IssueCodesResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (r: IssueCodesResponse) => results.push(r));
      s.on('end', resolve);
      s.on('error', reject);
    });
    const started = Date.now();
    for (let i = 0; i < 3; i++) s.write(create(IssueCodesRequestSchema, { personalNumbers: population(5000, 600 + i) }));
    s.end();
    await done;
    // 15,000 numbers at 5,000 a second with a burst of 5,000 cannot take less than two seconds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(results.flatMap((r) => r.results).filter((x) => x.status !== 0)).toEqual([]);
    expect(results.flatMap((r) => r.results)).toHaveLength(15_000);
    const text = await h.gw.metrics.registry.getSingleMetricAsString('linkgw_bulk_paced_seconds_total');
    expect(text).toMatch(/agency="pension"} [0-9.]*[1-9]/);
  });
});
