/**
 * Starts a real gateway (mTLS, port 0) with its simulated agencies in a fresh data directory, with logs
 * captured to a file, and gives agency clients for it.
 */
import { mkdtempSync, createWriteStream, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { settingsFromEnv } from '../../src/config/settings.js';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/log/logger.js';

export const PG_URL = process.env.LINKGW_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type StoreKind = 'sqlite' | 'postgres';

export interface Harness {
  readonly gw: RunningGateway;
  readonly dataDir: string;
  readonly logFile: string;
  readonly pgSchema: string | undefined;
  client(agency: string): AgencyClient;
  logs(): string;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'linkgw-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function createPgSchema(): Promise<{ url: string; schema: string; drop: () => Promise<void> }> {
  const schema = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  return {
    url: `${PG_URL}?schema=${schema}`,
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

export async function startHarness(
  opts: { records?: StoreKind; env?: Record<string, string>; dataDir?: string; pgUrl?: string } & Partial<Omit<GatewayOptions, 'log'>> = {},
): Promise<Harness> {
  const dataDir = opts.dataDir ?? tempDir();
  const logFile = join(dataDir, 'gateway.log');
  const stream = createWriteStream(logFile, { flags: 'a' });
  const log = createLogger({ level: 'debug', stream });
  let pgSchema: Awaited<ReturnType<typeof createPgSchema>> | undefined;
  let recordsUrl = opts.pgUrl;
  if (opts.records === 'postgres' && !recordsUrl) {
    pgSchema = await createPgSchema();
    recordsUrl = pgSchema.url;
  }
  const settings = settingsFromEnv({
    LINKGW_DATA_DIR: dataDir,
    LINKGW_LISTEN: '127.0.0.1:0',
    LINKGW_METRICS_LISTEN: '127.0.0.1:0',
    ...(recordsUrl ? { LINKGW_RECORDS_URL: recordsUrl } : {}),
    ...opts.env,
  });
  const { records: _r, env: _e, dataDir: _d, pgUrl: _p, ...gwOpts } = opts;
  const gw = await startGateway(settings, { log, ...gwOpts });
  const clients: AgencyClient[] = [];
  return {
    gw,
    dataDir,
    logFile,
    pgSchema: pgSchema?.schema,
    client(agency) {
      const c = new AgencyClient({ address: gw.address, agency, pkiDir: join(dataDir, 'pki') });
      clients.push(c);
      return c;
    },
    logs: () => readFileSync(logFile, 'utf8'),
    async stop() {
      for (const c of clients) c.close();
      await gw.stop(1000);
      await new Promise<void>((r) => stream.end(() => r()));
      if (pgSchema) await pgSchema.drop();
      if (!opts.dataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        rmSync(settings.devCaDir, { recursive: true, force: true });
      }
    },
  };
}

/** The gRPC status code of a rejected call (fails the test if the call succeeded). */
export async function statusOf(p: Promise<unknown>): Promise<{ code: number; details: string; metadata?: import('@grpc/grpc-js').Metadata }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: number; details: string; metadata?: import('@grpc/grpc-js').Metadata };
    return { code: err.code, details: err.details, ...(err.metadata ? { metadata: err.metadata } : {}) };
  }
  throw new Error('expected the call to fail, but it succeeded');
}
