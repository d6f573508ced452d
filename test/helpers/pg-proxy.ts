/**
 * A TCP proxy in front of a PostgreSQL server that a test can cut: `cut()` closes every connection through it
 * and refuses new ones (as a database that went away would), `restore()` listens again on the same port.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

export class PgProxy {
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<[Socket, Socket]>();
  #server: Server | undefined;
  port = 0;

  constructor(target: { host: string; port: number } = { host: '127.0.0.1', port: 5432 }) {
    this.#target = target;
  }

  /** Starts listening (on a free port the first time, on the same port afterwards). */
  async restore(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const upstream = tcpConnect(this.#target.port, this.#target.host);
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
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
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Closes every connection through the proxy and refuses new ones until `restore()`. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const [c, u] of this.#pairs) {
      c.destroy();
      u.destroy();
    }
    this.#pairs.clear();
    if (server) await new Promise((r) => server.close(r));
  }

  /** The URL of `base` (a postgres:// URL of the target), through the proxy. */
  url(base: string): string {
    const u = new URL(base);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  close(): Promise<void> {
    return this.cut();
  }
}
