/**
 * A PostgreSQL cluster of a test's own (initdb, pg_ctl) on a free port, for faults that must not touch the
 * shared server: stopping server processes in the middle of their work (a stopped backend may hold locks every
 * other session of its cluster waits for), or stopping and starting the server itself. Runs the server as the
 * `postgres` user when the test runs as root (initdb refuses root), as the test's own user otherwise.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The directory of PostgreSQL's programs (Debian keeps them out of PATH). */
async function binDir(): Promise<string> {
  try {
    return (await run('pg_config', ['--bindir'])).stdout.trim();
  } catch {
    return '';
  }
}

export interface PrivatePostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  /** Stops the server (`immediate`: as if it crashed; `fast`: rolls back and closes sessions). */
  stopServer(mode?: 'immediate' | 'fast'): Promise<void>;
  startServer(): Promise<void>;
  /** Stops the server and removes the cluster. */
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'linkgw-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const bin = await binDir();
  const tool = (name: string) => (bin ? join(bin, name) : name);
  const as = async (cmd: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout), Number(gid));
  }
  const port = await freePort();
  await as(tool('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  const pg: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stopServer: async (mode = 'immediate') => {
      await as(tool('pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop']).catch(() => undefined);
    },
    startServer: async () => {
      await as(tool('pg_ctl'), ['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', 'start']);
    },
    destroy: async () => {
      await pg.stopServer('immediate');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await pg.startServer();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return pg;
}
