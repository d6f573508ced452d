/**
 * A Lua script run with EVALSHA, falling back to EVAL (which also caches it) when the node answers NOSCRIPT
 * (first use, a restart, a failover, another cluster node).
 *
 * Not ioredis `defineCommand`: an auto-pipeline copies the defined commands when it is created, so a command
 * defined while a pipeline is pending (any command issued earlier in the same tick) is missing from it; the
 * call then throws inside ioredis, the pipeline's callbacks shift by one, and an uncaught "results[i] is not
 * iterable" TypeError crashes the process (ioredis issue #1931; reproduced here with 5.11.1). EVALSHA and EVAL
 * are ordinary commands, present on every pipeline, and auto-pipelined like any other.
 *
 * On a Redis Cluster a script runs on the node of its keys' slot, so all its keys must share one slot: a
 * script that touches several keys of one feature and agency names them with one hash tag
 * (`prefix{feature:agency}…`). `run` refuses keys of different slots before sending anything, so a script
 * that would work on one node and fail with CROSSSLOT on a cluster fails the same way everywhere. (Every
 * script today touches one key.)
 */
import { createHash } from 'node:crypto';
import { keySlot } from './key-slot.js';
import type { RedisClient } from './redis-connection.js';

/**
 * ioredis defines `<command>Buffer` for every command at run time but declares it for some only. Not
 * `callBuffer('EVALSHA', …)`: auto-pipelined, it sends its first argument as the command name ("ERR unknown
 * command '<sha>'", seen with 5.11.1).
 */
interface BufferEval {
  evalshaBuffer(sha: string, numkeys: number, ...args: (string | number | Buffer)[]): Promise<unknown>;
  evalBuffer(lua: string, numkeys: number, ...args: (string | number | Buffer)[]): Promise<unknown>;
}

export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  /** Runs the script; bulk replies come back as strings. */
  run(client: RedisClient, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    return this.#run(client, keys, args, false);
  }

  /** Runs the script; bulk replies come back as Buffers (for sealed, binary values). */
  runBuffer(client: RedisClient, keys: readonly string[], args: readonly (string | number | Buffer)[]): Promise<unknown> {
    return this.#run(client, keys, args, true);
  }

  async #run(client: RedisClient, keys: readonly string[], args: readonly (string | number | Buffer)[], buffers: boolean): Promise<unknown> {
    if (keys.length > 1) {
      const slot = keySlot(keys[0]!);
      if (keys.some((k) => keySlot(k) !== slot)) throw new Error('a Redis script\'s keys must share one hash slot (use one hash tag)');
    }
    const c = client as RedisClient & BufferEval;
    try {
      return await (buffers ? c.evalshaBuffer(this.sha, keys.length, ...keys, ...args) : c.evalsha(this.sha, keys.length, ...keys, ...args));
    } catch (e) {
      if (!(e instanceof Error && e.name === 'ReplyError' && e.message.startsWith('NOSCRIPT'))) throw e;
      return await (buffers ? c.evalBuffer(this.lua, keys.length, ...keys, ...args) : c.eval(this.lua, keys.length, ...keys, ...args));
    }
  }
}
