/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) when the node answers NOSCRIPT
 * (first use, a restart, a failover, another cluster node).
 *
 * Not ioredis `defineCommand`: an auto-pipeline copies the defined commands when it is created, so a command
 * defined while a pipeline is pending (any command issued earlier in the same tick) is missing from it; the
 * call then throws inside ioredis, the pipeline's callbacks shift by one, and an uncaught "results[i] is not
 * iterable" TypeError crashes the process (ioredis issue #1931; reproduced here with 5.11.1). EVALSHA and EVAL
 * are ordinary commands, present on every pipeline, and auto-pipelined like any other.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection.js';

export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error && e.name === 'ReplyError' && e.message.startsWith('NOSCRIPT'))) throw e;
      return await client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
