/**
 * Shared pieces of the Redis tests: the run's Redis (its URL goes through the key audit, see
 * test/global-setup.ts) and key prefix, connections that are closed afterwards, removal of one's own keys,
 * readiness, a closed port. Never FLUSH: Redis is shared with other runs; delete only keys under your prefix.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { inject } from 'vitest';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { until } from './wait.js';

export { until };

export interface RedisRun {
  /** redis://127.0.0.1:PORT of the audited proxy in front of the run's Redis. */
  readonly url: string;
  /** Every key this run writes starts with it. */
  readonly prefix: string;
  /** host:port of the Redis behind the proxy. */
  readonly upstream: string;
  /** What the audit saw, as JSON (key-hygiene.test.ts). */
  readonly auditUrl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisRun: RedisRun;
  }
}

export function redisRun(): RedisRun {
  return inject('redisRun');
}

/** A key prefix of one's own, inside the run's: `<run prefix><name>-<random>:`. */
export function testPrefix(name: string): string {
  return `${redisRun().prefix}${name}-${randomBytes(3).toString('hex')}:`;
}

/** Makes connections to `url` with a key prefix, and remembers them in `conns` so the suite can close them. */
export function connector(url: string, prefix: string, conns: RedisConnection[]): (u?: string) => RedisConnection {
  return (u = url) => {
    const c = new RedisConnection({ url: u, keyPrefix: prefix, commandTimeoutMs: 500 });
    conns.push(c);
    return c;
  };
}

/** Deletes every key under `prefix` (SCAN, never KEYS * or FLUSH), through the run's Redis; returns how many. */
export async function removeKeys(prefix: string): Promise<number> {
  if (!prefix.startsWith(redisRun().prefix)) throw new Error(`${prefix} is not under the run's prefix`);
  const conn = new RedisConnection({ url: redisRun().url, commandTimeoutMs: 5000 });
  try {
    await until(() => conn.state() === 'up');
    let removed = 0;
    let cursor = '0';
    do {
      const [next, keys] = await conn.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) removed += await conn.client.unlink(...keys);
    } while (cursor !== '0');
    return removed;
  } finally {
    await conn.close();
  }
}

/** Waits until the connection reports Redis up (5 s at most). */
export async function up(conn: RedisConnection): Promise<void> {
  await until(() => conn.state() === 'up');
}

/** A local port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
