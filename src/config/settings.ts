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
  readonly engine: 'inline' | 'pool' | 'auto';
  readonly redisUrl: string | undefined;
  readonly redisCommandTimeoutMs: number;
  /** Conversion cache tiers: none (compute every time), the in-process LRU, or LRU then Redis. */
  readonly cache: 'off' | 'local' | 'local,redis';
  /** Per-agency rate limits, `default=rate/burst,agency=rate/burst`. */
  readonly rateLimit: string;
  readonly rateLimitReplicas: number;
  readonly idempotencyWindowMs: number;
  readonly maxInFlight: number;
  /** Calls one agency may have in flight, so that no agency can take the whole gateway. */
  readonly maxInFlightPerAgency: number;
  /** Longest a request waits for its access record before failing UNAVAILABLE, ms. */
  readonly recordTimeoutMs: number;
  /** In-flight slots kept for agencies within their guaranteed share. */
  readonly inFlightReserve: number;
  /** Streams one agency may have open at once. */
  readonly maxStreamsPerAgency: number;
  /** A stream with no progress for this long is ended, ms. */
  readonly streamIdleTimeoutMs: number;
  /** Per-agency bulk issuance rate: personal numbers per second and burst, `default=R/B,agency=R/B`. */
  readonly rateLimitBulk: string;
  /** Worker threads of the mapping pool (default: cores − 1, at least 1). */
  readonly poolThreads: number | undefined;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Where the keyring's secrets are protected: the plain file, the file under a passphrase, or a PKCS#11 token. */
  readonly keyring: KeyringSettings;
  /**
   * Where the development CA keeps its private key: outside the data directory, so that a copy of what a
   * running gateway reads cannot mint agency certificates. Used only to create the dev PKI and to issue a
   * certificate for a new agency later; the gateway itself never reads it.
   */
  readonly devCaDir: string;
}

/** A secret given in a file (preferred: it stays out of the environment) or in an environment variable. */
export type SecretSource = { readonly file: string } | { readonly value: string };

export type KeyringSettings =
  | { readonly backend: 'plain' }
  | { readonly backend: 'passphrase'; readonly passphrase: SecretSource }
  | { readonly backend: 'pkcs11'; readonly module: string; readonly token: string; readonly pin: SecretSource };

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
  ['LINKGW_ENGINE', 'auto', 'auto (single calls inline, batches on worker threads), inline or pool: where codes are computed'],
  ['LINKGW_REDIS_URL', '(unset)', 'redis://host:port/db or redis+cluster://h1:p1,h2:p2: shared rate limits, idempotency, cache'],
  ['LINKGW_REDIS_COMMAND_TIMEOUT_MS', '50', 'a Redis command slower than this counts as a failure and local state is used'],
  ['LINKGW_CACHE', 'off', 'off, local or local,redis: conversion cache tiers (computing is faster with local keys)'],
  ['LINKGW_RATE_LIMIT', 'default=5000/10000', 'per-agency requests/s and burst: default=R/B,agency=R/B,…'],
  ['LINKGW_RATE_LIMIT_REPLICAS', '1', 'replicas sharing the limits; each takes 1/n locally when Redis is away'],
  ['LINKGW_IDEMPOTENCY_WINDOW_S', '600', 'how long a QueryInformation x-request-id replays its first outcome'],
  ['LINKGW_POOL_THREADS', '(cores − 1, at least 1)', 'worker threads of the mapping pool'],
  ['LINKGW_MAX_IN_FLIGHT', '4096', 'calls handled at once; more are refused with RESOURCE_EXHAUSTED'],
  ['LINKGW_MAX_IN_FLIGHT_PER_AGENCY', 'half of LINKGW_MAX_IN_FLIGHT', 'calls one agency may have in flight (streams count for their whole life)'],
  ['LINKGW_IN_FLIGHT_RESERVE', 'a quarter of LINKGW_MAX_IN_FLIGHT', 'slots that agencies over their guaranteed share (max / agencies) may not borrow: kept for the others'],
  ['LINKGW_MAX_STREAMS_PER_AGENCY', '8', 'IssueCodes and reflection streams one agency may have open at once'],
  ['LINKGW_STREAM_IDLE_TIMEOUT_MS', '60000', 'a stream with no progress (no message sent, no answer read) for this long is ended'],
  ['LINKGW_RATE_LIMIT_BULK', 'default=50000/500000', 'per-agency bulk issuance: personal numbers/s and burst; a faster stream is paced, not failed'],
  ['LINKGW_RECORD_TIMEOUT_MS', '10000', 'longest a request waits for its access record (UNAVAILABLE after; /readyz is 503 while a commit takes longer)'],
  ['LINKGW_LOG_LEVEL', 'info', 'debug, info, warn or error'],
  ['LINKGW_KEYRING_PASSPHRASE_FILE', '(unset)', 'file holding the passphrase of a passphrase-wrapped keyring (linkgw keys wrap)'],
  ['LINKGW_KEYRING_PASSPHRASE', '(unset)', 'the passphrase itself (prefer the _FILE form: the environment is easier to leak)'],
  ['LINKGW_PKCS11_MODULE', '(unset: keys in the keyring file)', 'PKCS#11 module (.so) of the HSM holding the sealing key and the key that wraps the keyring'],
  ['LINKGW_PKCS11_TOKEN', 'linkgw', 'label of the PKCS#11 token'],
  ['LINKGW_PKCS11_PIN_FILE', '(this or LINKGW_PKCS11_PIN with a module)', 'file holding the token user PIN'],
  ['LINKGW_PKCS11_PIN', '(unset)', 'the token user PIN itself (prefer the _FILE form)'],
  ['LINKGW_DEV_CA_DIR', '<data dir>-dev-ca', 'where the development CA key is kept (never in the data dir; the gateway does not read it)'],
  ['LINKGW_INSECURE_PLAINTEXT', '0', '1: no TLS, callers name themselves (development only, loopback addresses only; logs a warning)'],
];

function bool(v: string | undefined, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  if (['1', 'true', 'yes', 'on'].includes(v.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(v.toLowerCase())) return false;
  throw new Error(`not a boolean: "${v}"`);
}

function positive(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: a positive number`);
  return n;
}

function cacheMode(v: string | undefined): Settings['cache'] {
  const m = (v || 'off').replace(/\s+/g, '');
  if (m === 'off' || m === 'local' || m === 'local,redis') return m;
  throw new Error('LINKGW_CACHE: off, local or local,redis');
}

function secretSource(env: NodeJS.ProcessEnv, name: string): SecretSource | undefined {
  const file = env[`${name}_FILE`];
  const value = env[name];
  if (file && value) throw new Error(`${name} and ${name}_FILE: set one, not both`);
  if (file) return { file: resolve(file) };
  if (value) return { value };
  return undefined;
}

function keyringSettings(env: NodeJS.ProcessEnv): KeyringSettings {
  const passphrase = secretSource(env, 'LINKGW_KEYRING_PASSPHRASE');
  const module = env.LINKGW_PKCS11_MODULE;
  const pin = secretSource(env, 'LINKGW_PKCS11_PIN');
  if (!module) {
    if (pin || env.LINKGW_PKCS11_TOKEN) throw new Error('LINKGW_PKCS11_TOKEN and LINKGW_PKCS11_PIN need LINKGW_PKCS11_MODULE');
    return passphrase ? { backend: 'passphrase', passphrase } : { backend: 'plain' };
  }
  // One protection at a time: a passphrase next to an HSM would suggest a second layer that is not there.
  if (passphrase) throw new Error('LINKGW_KEYRING_PASSPHRASE and LINKGW_PKCS11_MODULE: a keyring is protected by a passphrase or by a token, not both');
  if (!pin) throw new Error('LINKGW_PKCS11_MODULE needs the token PIN: LINKGW_PKCS11_PIN_FILE or LINKGW_PKCS11_PIN');
  return { backend: 'pkcs11', module: resolve(module), token: env.LINKGW_PKCS11_TOKEN || 'linkgw', pin };
}

/** host:port whose host is a loopback address. */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '').toLowerCase();
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost';
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const dataDir = resolve(env.LINKGW_DATA_DIR || './data');
  const pki = join(dataDir, 'pki');
  const engine = env.LINKGW_ENGINE || 'auto';
  if (engine !== 'inline' && engine !== 'pool' && engine !== 'auto') throw new Error('LINKGW_ENGINE: auto, inline or pool');
  const level = env.LINKGW_LOG_LEVEL || 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error('LINKGW_LOG_LEVEL: debug, info, warn or error');
  const timeout = positive(env.LINKGW_PROVIDER_TIMEOUT_MS, 5000, 'LINKGW_PROVIDER_TIMEOUT_MS');
  const listen = env.LINKGW_LISTEN || '127.0.0.1:50051';
  const maxInFlight = positive(env.LINKGW_MAX_IN_FLIGHT, 4096, 'LINKGW_MAX_IN_FLIGHT');
  const insecurePlaintext = bool(env.LINKGW_INSECURE_PLAINTEXT, false);
  // Without TLS a caller names its own agency: that must never be reachable from another machine.
  if (insecurePlaintext && !isLoopbackListen(listen))
    throw new Error('LINKGW_INSECURE_PLAINTEXT=1 listens only on a loopback address (127.0.0.1, [::1] or localhost), never on ' + listen);
  return {
    dataDir,
    listen,
    metricsListen: env.LINKGW_METRICS_LISTEN || '127.0.0.1:9464',
    agenciesFile: resolve(env.LINKGW_AGENCIES || join(PACKAGE_ROOT, 'config', 'agencies.json')),
    legalBasisFile: resolve(env.LINKGW_LEGAL_BASIS || join(PACKAGE_ROOT, 'config', 'legal-basis.json')),
    recordsUrl: env.LINKGW_RECORDS_URL || undefined,
    tls: {
      ca: resolve(env.LINKGW_TLS_CA || join(pki, 'ca.crt')),
      cert: resolve(env.LINKGW_TLS_CERT || join(pki, 'gateway.crt')),
      key: resolve(env.LINKGW_TLS_KEY || join(pki, 'gateway.key')),
    },
    insecurePlaintext,
    simulate: bool(env.LINKGW_SIMULATE, true),
    providerTimeoutMs: timeout,
    engine,
    redisUrl: env.LINKGW_REDIS_URL || undefined,
    redisCommandTimeoutMs: positive(env.LINKGW_REDIS_COMMAND_TIMEOUT_MS, 50, 'LINKGW_REDIS_COMMAND_TIMEOUT_MS'),
    cache: cacheMode(env.LINKGW_CACHE),
    rateLimit: env.LINKGW_RATE_LIMIT || 'default=5000/10000',
    rateLimitReplicas: positive(env.LINKGW_RATE_LIMIT_REPLICAS, 1, 'LINKGW_RATE_LIMIT_REPLICAS'),
    idempotencyWindowMs: positive(env.LINKGW_IDEMPOTENCY_WINDOW_S, 600, 'LINKGW_IDEMPOTENCY_WINDOW_S') * 1000,
    maxInFlight,
    maxInFlightPerAgency: Math.min(maxInFlight, positive(env.LINKGW_MAX_IN_FLIGHT_PER_AGENCY, Math.ceil(maxInFlight / 2), 'LINKGW_MAX_IN_FLIGHT_PER_AGENCY')),
    poolThreads: env.LINKGW_POOL_THREADS ? positive(env.LINKGW_POOL_THREADS, 1, 'LINKGW_POOL_THREADS') : undefined,
    recordTimeoutMs: positive(env.LINKGW_RECORD_TIMEOUT_MS, 10_000, 'LINKGW_RECORD_TIMEOUT_MS'),
    inFlightReserve: Math.min(maxInFlight, env.LINKGW_IN_FLIGHT_RESERVE === '0' ? 0 : positive(env.LINKGW_IN_FLIGHT_RESERVE, Math.floor(maxInFlight / 4), 'LINKGW_IN_FLIGHT_RESERVE')),
    maxStreamsPerAgency: positive(env.LINKGW_MAX_STREAMS_PER_AGENCY, 8, 'LINKGW_MAX_STREAMS_PER_AGENCY'),
    streamIdleTimeoutMs: positive(env.LINKGW_STREAM_IDLE_TIMEOUT_MS, 60_000, 'LINKGW_STREAM_IDLE_TIMEOUT_MS'),
    rateLimitBulk: env.LINKGW_RATE_LIMIT_BULK || 'default=50000/500000',
    logLevel: level as Settings['logLevel'],
    keyring: keyringSettings(env),
    devCaDir: resolve(env.LINKGW_DEV_CA_DIR || `${dataDir}-dev-ca`),
  };
}
