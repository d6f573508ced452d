/**
 * The Redis tier seen from agencies: two gateways sharing one Redis share the conversion cache, the rate
 * limits and idempotent retries; Redis that stops answering mid-traffic fails no request; and a dump of
 * every Redis key and value holds no personal number and no agency code.
 */
import { status } from '@grpc/grpc-js';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import type { ProvideRequest } from '../../src/gen/linkage/v1/provider_pb.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { FreezingProxy } from '../helpers/freezing-proxy.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { redisRun, removeKeys, testPrefix, up } from '../helpers/redis.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';

// This file's keys in the run's Redis (never FLUSH: others share it).
const prefix = testPrefix('redis-tier');
const proxy = new FreezingProxy();
const received: ProvideRequest[] = [];
let a: Harness;
let b: Harness;
let codec: AgencyCodec;
const people = population(3000, 41);
let enrolled: string[];

async function metric(h: Harness, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://${h.gw.opsAddress}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (pattern.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

beforeAll(async () => {
  await proxy.listen();
  const env = {
    LINKGW_REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    LINKGW_REDIS_KEY_PREFIX: prefix,
    LINKGW_CACHE: 'local,redis',
    // employment: a burst of 5, then one call every 20 s, so the test sees the burst and nothing else.
    LINKGW_RATE_LIMIT: 'default=100000/100000,employment=0.05/5',
    // A loaded CI machine can be slower than the 50 ms default to answer; a late reply would be a local
    // fallback and break the sharing these tests check. The freeze test needs only that replies stop.
    LINKGW_REDIS_COMMAND_TIMEOUT_MS: '500',
  };
  a = await startHarness({ env, simulation: { onRequest: (_agency, req) => received.push(req) } });
  const dirB = tempDir();
  cpSync(join(a.dataDir, 'keyring.json'), join(dirB, 'keyring.json'));
  cpSync(join(a.dataDir, 'pki'), join(dirB, 'pki'), { recursive: true });
  b = await startHarness({ env, dataDir: dirB, simulation: { onRequest: (_agency, req) => received.push(req) } });
  codec = new AgencyCodec(a.gw.keyring);
  enrolled = people.filter((n) => {
    const c = checkPersonalNumber(n);
    return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
  });
});
afterAll(async () => {
  proxy.thaw();
  await b?.stop();
  await a?.stop();
  await proxy.close();
  await removeKeys(prefix);
});

describe('two gateways sharing Redis', () => {
  it('share conversions: what one computed, the other finds in Redis', async () => {
    // Single calls: whole bulk messages skip the cache (computing a batch costs less than looking it up, ADR 0105).
    const batch = people.slice(0, 50);
    await Promise.all(batch.map((n) => a.client('pension').issueCode(n)));
    const before = await metric(b, /^linkgw_cache_lookups_total\{tier="redis",outcome="hit"\}/);
    const viaB = await Promise.all(batch.map((n) => b.client('pension').issueCode(n)));
    const after = await metric(b, /^linkgw_cache_lookups_total\{tier="redis",outcome="hit"\}/);
    expect(after - before).toBeGreaterThanOrEqual(50);
    viaB.forEach((r, i) => {
      const c = checkPersonalNumber(batch[i]!);
      expect(c.ok && r.code).toBe(c.ok && codec.encode('pension', c.value));
    });
  });

  it('replay a retried query (same x-request-id) through either gateway: one exchange, one record', async () => {
    const person = enrolled[0]!;
    const { code } = await a.client('pension').issueCode(person);
    const q = { code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' };
    received.length = 0;
    const first = await a.client('pension').queryInformation(q, { requestId: 'retry-1' });
    const again = await a.client('pension').queryInformation(q, { requestId: 'retry-1' });
    const elsewhere = await b.client('pension').queryInformation(q, { requestId: 'retry-1' });
    expect(received).toHaveLength(1);
    expect(again.recordId).toBe(first.recordId);
    expect(elsewhere.recordId).toBe(first.recordId);
    expect(Buffer.from(elsewhere.payload)).toEqual(Buffer.from(first.payload));
    // A new id is a new exchange.
    const fresh = await a.client('pension').queryInformation(q, { requestId: 'retry-2' });
    expect(fresh.recordId).not.toBe(first.recordId);
    expect(received).toHaveLength(2);
    // The same id for another query is refused, not answered with the first one's data.
    const other = await statusOf(a.client('pension').queryInformation({ ...q, item: 'pension-benefit' }, { requestId: 'retry-1' }));
    expect(other.code).toBe(status.INVALID_ARGUMENT);
    // Another agency's identical id is its own.
    const wc = (await a.client('welfare').issueCode(person)).code;
    const w = await a.client('welfare').queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }, { requestId: 'retry-1' });
    expect(w.recordId).not.toBe(first.recordId);
    // Refusals replay too.
    const denied1 = await statusOf(a.client('pension').queryInformation({ ...q, provider: 'employment' }, { requestId: 'deny-1' }));
    const denied2 = await statusOf(b.client('pension').queryInformation({ ...q, provider: 'employment' }, { requestId: 'deny-1' }));
    expect([denied1.code, denied2.code]).toEqual([status.PERMISSION_DENIED, status.PERMISSION_DENIED]);
  });

  it('share one rate limit per agency, refusing with RESOURCE_EXHAUSTED and a retry hint', async () => {
    const ea = a.client('employment');
    const eb = b.client('employment');
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, (_, i) => ((i % 2 ? ea : eb).issueCode(people[100 + i]!)).then(() => 'ok', (e: { code: number; metadata?: { get(k: string): unknown[] } }) => e)),
    );
    const ok = outcomes.filter((o) => o === 'ok').length;
    const refused = outcomes.filter((o) => o !== 'ok') as { code: number; metadata?: { get(k: string): unknown[] } }[];
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok).toBeLessThanOrEqual(6); // the burst of 5, plus at most one refilled (one every 20 s)
    expect(refused.length).toBe(16 - ok);
    for (const r of refused) {
      expect(r.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(Number(r.metadata?.get('retry-after-ms')[0])).toBeGreaterThan(0);
    }
    // Other agencies are not affected.
    await expect(a.client('tax').issueCode(people[200]!)).resolves.toMatchObject({ code: expect.any(String) });
  });

  it('keep every request succeeding while Redis stops answering, and say so in metrics', async () => {
    const pension = a.client('pension');
    const codes = await pension.issueBulk(enrolled.slice(10, 40));
    let failed = 0;
    let done = 0;
    const errors: string[] = [];
    const traffic = async (loop: string, until: number) => {
      let i = 0;
      while (Date.now() < until) {
        const code = codes[i++ % codes.length]!.code;
        await pension
          .queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' }, { requestId: `frozen-${loop}-${i}` })
          .then(() => done++, (e: { code: number; details: string }) => (failed++, errors.push(`${e.code} ${e.details}`)));
        await pension.issueCode(people[500 + (i % 500)]!).then(() => done++, (e: { code: number; details: string }) => (failed++, errors.push(`${e.code} ${e.details}`)));
      }
    };
    const end = Date.now() + 3000;
    const run = Promise.all([traffic('a', end), traffic('b', end)]);
    await new Promise((r) => setTimeout(r, 500));
    proxy.freeze();
    await run;
    expect(errors).toEqual([]);
    expect(failed).toBe(0);
    expect(done).toBeGreaterThan(20);
    expect(await metric(a, /^linkgw_redis_up /)).toBe(0);
    expect(await metric(a, /^linkgw_redis_fallbacks_total\{feature="rate-limit"/)).toBeGreaterThan(0);
    proxy.thaw();
  });

  it('leave nothing in Redis that names a person: no number, no code, in any key or value', async () => {
    const conn = new RedisConnection({ url: redisRun().url, commandTimeoutMs: 5000 });
    await up(conn);
    const r = conn.client;
    try {
      const keys: Buffer[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await r.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = String(next);
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(50);
      let dump = '';
      for (const k of keys) {
        dump += k.toString('latin1') + '\n';
        const type = await r.type(k);
        if (type === 'string') dump += ((await r.getBuffer(k)) ?? Buffer.alloc(0)).toString('latin1') + '\n';
        else if (type === 'hash') dump += JSON.stringify(await r.hgetall(k)) + '\n';
      }
      const used = people.slice(0, 700).concat(enrolled.slice(0, 40));
      for (const n of used) {
        expect(dump.includes(n), 'a personal number in Redis').toBe(false);
        const c = checkPersonalNumber(n);
        if (!c.ok) continue;
        for (const agency of ['pension', 'tax', 'welfare', 'employment']) {
          const code = codec.encode(agency, c.value);
          expect(dump.includes(code) || dump.toLowerCase().includes(code.toLowerCase()), 'an agency code in Redis').toBe(false);
        }
      }
    } finally {
      await conn.close();
    }
  });
});
