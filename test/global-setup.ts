/**
 * Once per `vitest run`: the run's own Redis key prefix, and the audited way to Redis (redis-key-audit.ts).
 * Every test reaches Redis through `redisRun()` (test/helpers/redis.ts), writes only under the prefix and
 * deletes only its own keys; test/redis/key-hygiene.test.ts runs after all the others and checks both. Vitest
 * calls this once per project: the first call starts the run, the last teardown stops it.
 */
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { RedisKeyAudit } from './helpers/redis-key-audit.js';

const run = globalThis as { __linkgwRedisRun?: { audit: Promise<RedisKeyAudit>; prefix: string; upstream: string; users: number } };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!run.__linkgwRedisRun) {
    // LINKGW_TEST_REDIS_ADDR points the suite at another Redis (host:port); the default is the local one.
    const upstream = process.env.LINKGW_TEST_REDIS_ADDR ?? '127.0.0.1:6379';
    const i = upstream.lastIndexOf(':');
    const prefix = `linkgw-test-${randomBytes(5).toString('hex')}:`;
    const audit = new RedisKeyAudit(prefix, { host: upstream.slice(0, i), port: Number(upstream.slice(i + 1)) });
    run.__linkgwRedisRun = { audit: audit.start().then(() => audit), prefix, upstream, users: 0 };
  }
  const r = run.__linkgwRedisRun;
  r.users++;
  const audit = await r.audit;
  project.provide('redisRun', { url: `redis://127.0.0.1:${audit.port}`, prefix: r.prefix, upstream: r.upstream, auditUrl: `http://127.0.0.1:${audit.httpPort}/` });
  return async () => {
    if (--r.users === 0) await audit.close();
  };
}
