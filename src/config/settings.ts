/**
 * Settings from the environment, with embedded defaults that run the whole gateway on one machine with no
 * outside servers: SQLite records, inline mapping, dev PKI and keyring created in the data directory, and the
 * simulated agencies started in-process.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds config/ and proto/), found from this file in src/ or dist/. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Settings {
  readonly dataDir: string;
  readonly listen: string;
  readonly metricsListen: string;
  readonly agenciesFile: string;
  readonly legalBasisFile: string;
  readonly recordsUrl: string | undefined;
  readonly tls: { ca: string; cert: string; key: string };
  /** Development only: no TLS at all; the caller names itself in metadata. */
  readonly insecurePlaintext: boolean;
  /** Start the simulated providing agencies in-process and point the registry at them. */
  readonly simulate: boolean;
  readonly providerTimeoutMs: number;
  readonly engine: 'inline' | 'pool';
  readonly redisUrl: string | undefined;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export const ENV_DOC: readonly [string, string, string][] = [
  ['LINKGW_DATA_DIR', './data', 'keyring, dev PKI, SQLite records and other state'],
  ['LINKGW_LISTEN', '127.0.0.1:50051', 'gRPC address (mTLS)'],
  ['LINKGW_METRICS_LISTEN', '127.0.0.1:9464', 'HTTP address of /metrics, /healthz, /readyz'],
  ['LINKGW_AGENCIES', 'config/agencies.json', 'agency registry file'],
  ['LINKGW_LEGAL_BASIS', 'config/legal-basis.json', 'legal-basis table file'],
  ['LINKGW_RECORDS_URL', '(unset: SQLite in the data dir)', 'postgres://… to keep access records in PostgreSQL'],
  ['LINKGW_TLS_CA / _CERT / _KEY', '<data>/pki/ca.crt, gateway.crt, gateway.key', 'the CA agencies are checked against, and the gateway certificate'],
  ['LINKGW_SIMULATE', '1', '1: start the simulated providing agencies in-process; 0: call the registry addresses'],
  ['LINKGW_PROVIDER_TIMEOUT_MS', '5000', 'the longest a provider call may take, whatever the caller\'s deadline'],
  ['LINKGW_ENGINE', 'inline', 'inline or pool: where codes are computed'],
  ['LINKGW_REDIS_URL', '(unset)', 'redis://… to share cache, rate limits and idempotency between replicas'],
  ['LINKGW_LOG_LEVEL', 'info', 'debug, info, warn or error'],
  ['LINKGW_INSECURE_PLAINTEXT', '0', '1: no TLS, callers name themselves (development only; logs a warning)'],
];

function bool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  if (['1', 'true', 'yes', 'on'].includes(v.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(v.toLowerCase())) return false;
  throw new Error(`not a boolean: "${v}"`);
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = resolve(env.LINKGW_DATA_DIR || './data');
  const pki = join(dataDir, 'pki');
  const engine = env.LINKGW_ENGINE || 'inline';
  if (engine !== 'inline' && engine !== 'pool') throw new Error('LINKGW_ENGINE: inline or pool');
  const level = env.LINKGW_LOG_LEVEL || 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error('LINKGW_LOG_LEVEL: debug, info, warn or error');
  const timeout = Number(env.LINKGW_PROVIDER_TIMEOUT_MS || 5000);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error('LINKGW_PROVIDER_TIMEOUT_MS: a positive number');
  return {
    dataDir,
    listen: env.LINKGW_LISTEN || '127.0.0.1:50051',
    metricsListen: env.LINKGW_METRICS_LISTEN || '127.0.0.1:9464',
    agenciesFile: resolve(env.LINKGW_AGENCIES || join(PACKAGE_ROOT, 'config', 'agencies.json')),
    legalBasisFile: resolve(env.LINKGW_LEGAL_BASIS || join(PACKAGE_ROOT, 'config', 'legal-basis.json')),
    recordsUrl: env.LINKGW_RECORDS_URL || undefined,
    tls: {
      ca: resolve(env.LINKGW_TLS_CA || join(pki, 'ca.crt')),
      cert: resolve(env.LINKGW_TLS_CERT || join(pki, 'gateway.crt')),
      key: resolve(env.LINKGW_TLS_KEY || join(pki, 'gateway.key')),
    },
    insecurePlaintext: bool(env.LINKGW_INSECURE_PLAINTEXT, false),
    simulate: bool(env.LINKGW_SIMULATE, true),
    providerTimeoutMs: timeout,
    engine,
    redisUrl: env.LINKGW_REDIS_URL || undefined,
    logLevel: level as Settings['logLevel'],
  };
}
