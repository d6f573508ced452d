/**
 * Runs after every other test file (its own vitest project, a later group): the run touched no Redis key
 * outside its prefix (every command of the run went through the key audit, see test/global-setup.ts), and
 * left no key under it (each file deleted its own). Other runs may use the same Redis meanwhile; neither
 * check depends on them.
 */
import { describe, expect, it } from 'vitest';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import type { KeyAudit } from '../helpers/redis-key-audit.js';
import { redisRun, up } from '../helpers/redis.js';

const audit = async () => (await (await fetch(redisRun().auditUrl)).json()) as KeyAudit;

async function keysUnder(conn: RedisConnection, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await conn.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('Redis key hygiene of this test run', () => {
  it('touched no key outside the run prefix and left none under it', async () => {
    const run = redisRun();
    const conn = new RedisConnection({ url: run.url, commandTimeoutMs: 5000 });
    try {
      await up(conn);
      // The audit sees what goes through: a canary under the prefix is counted, and is not "outside".
      const before = await audit();
      await conn.client.set(`${run.prefix}hygiene-canary`, '1', 'PX', 60_000);
      await conn.client.del(`${run.prefix}hygiene-canary`);
      const after = await audit();
      expect(after.keys - before.keys).toBe(2);
      console.log(`Redis audit of this run: ${after.commands} commands naming ${after.keys} keys, ${after.outside} outside ${run.prefix}`);
      expect(after.outside, `keys outside ${run.prefix}:\n${after.outsideSample.join('\n')}`).toBe(0);
      // Counted by pattern: nothing of this run is left in Redis.
      const left = await keysUnder(conn, run.prefix);
      if (left.length) await conn.client.unlink(...left);
      expect(left, 'keys a test file did not delete').toEqual([]);
    } finally {
      await conn.close();
    }
  });
});
