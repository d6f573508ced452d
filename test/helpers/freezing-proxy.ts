/**
 * A TCP proxy in front of the run's Redis (test/helpers/redis.ts) that stops forwarding on demand: clients
 * stay connected but get no replies, like a Redis stalled by CLIENT PAUSE, without pausing the server for
 * other test files.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { redisRun } from './redis.js';

export class FreezingProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  frozen = false;
  port = 0;

  constructor() {
    const target = new URL(redisRun().url);
    this.#server = createServer((client) => {
      const upstream = tcpConnect(Number(target.port), target.hostname);
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      if (this.frozen) {
        client.pause();
        upstream.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as { port: number }).port;
  }

  freeze(): void {
    this.frozen = true;
    for (const [c, u] of this.#pairs) {
      c.unpipe(u);
      u.unpipe(c);
      c.pause();
      u.pause();
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const [c, u] of this.#pairs) {
      c.pipe(u);
      u.pipe(c);
      c.resume();
      u.resume();
    }
  }

  async close(): Promise<void> {
    for (const [c, u] of this.#pairs) {
      c.destroy();
      u.destroy();
    }
    await new Promise((r) => this.#server.close(r));
  }
}
