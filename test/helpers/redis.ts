/** Shared pieces of the Redis tests: connections that are closed afterwards, readiness, a closed port. */
import { createServer } from 'node:net';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { until } from './wait.js';

export { until };

/** Makes connections to `url` with a key prefix, and remembers them in `conns` so the suite can close them. */
export function connector(url: string, prefix: string, conns: RedisConnection[]): (u?: string) => RedisConnection {
  return (u = url) => {
    const c = new RedisConnection({ url: u, keyPrefix: prefix, commandTimeoutMs: 500 });
    conns.push(c);
    return c;
  };
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
