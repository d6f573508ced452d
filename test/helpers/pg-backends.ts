/**
 * The gateway's own PostgreSQL sessions, found by their application_name (`linkgw/<replica>`), and what a fault
 * test does to them: terminate them, or stop and resume their server processes (the test runs as root, or as
 * the owner of a private cluster).
 */
import pg from 'pg';

export interface Backend {
  readonly pid: number;
  readonly state: string | null;
  readonly query: string;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'linkgw-fault-test' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The sessions named `application`, other than the caller's. */
export function backendsOf(url: string, application: string): Promise<Backend[]> {
  return withClient(url, async (c) =>
    (await c.query<{ pid: number; state: string | null; query: string }>('SELECT pid, state, query FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [application])).rows,
  );
}

/** pg_terminate_backend of every session named `application`; how many there were. */
export function terminateBackends(url: string, application: string): Promise<number> {
  return withClient(url, async (c) => (await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [application])).rowCount ?? 0);
}

/** Sends `signal` to server processes; those already gone are skipped. */
export function signalProcesses(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
}
