/**
 * Settings from the environment, with embedded defaults that run the whole gateway on one machine with no
 * outside servers: SQLite records, inline mapping, dev PKI and keyring created in the data directory, and the
 * simulated agencies started in-process.
 */
import { hostname } from 'node:os';
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
  /** Worker threads of the mapping pool (default: cores − 1, at least 1). */
  readonly poolThreads: number | undefined;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** This replica's transparency log, kept for its life and resumed after a restart (default: the host name). */
  readonly replicaId: string;
  /** The log's origin and note key name: `<LINKGW_LOG_ORIGIN_PREFIX>/<replicaId>`. */
  readonly logOrigin: string;
  /** A checkpoint is signed at most this often while records arrive, ms. */
  readonly checkpointIntervalMs: number;
  /** Witnesses asked to cosign each checkpoint (C2SP tlog-witness add-checkpoint): their key and URL prefix. */
  readonly witnesses: readonly { readonly vkey: string; readonly url: string }[];
}

/** The settings of `linkgw witness`, a process of its own. */
export interface WitnessSettings {
  readonly listen: string;
  /** Holds the witness key (witness-key.pem) and its state (witness-state.json). */
  readonly dir: string;
  /** The witness's key name. */
  readonly name: string;
  /** The logs it witnesses: log verifier keys, or `ORIGIN_PREFIX*=BASE64_ED25519_KEY` for a fleet's logs. */
  readonly logs: readonly string[];
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
  ['LINKGW_RECORD_TIMEOUT_MS', '10000', 'longest a request waits for its access record (UNAVAILABLE after; /readyz is 503 while a commit takes longer)'],
  ['LINKGW_REPLICA_ID', '(the host name)', 'this replica\'s transparency log, kept for its life and resumed after a restart (letters, digits, . _ -)'],
  ['LINKGW_LOG_ORIGIN_PREFIX', 'linkgw/records', 'the log origin (checkpoint note key name) is PREFIX/REPLICA_ID: make it unique to the deployment'],
  ['LINKGW_CHECKPOINT_INTERVAL_MS', '1000', 'a checkpoint of the log is signed at most this often while records arrive'],
  ['LINKGW_WITNESSES', '(unset)', 'witnesses that cosign checkpoints: VKEY=URL,… (C2SP tlog-witness; URL is the submission prefix)'],
  ['LINKGW_WITNESS_LISTEN', '127.0.0.1:7380', 'linkgw witness: HTTP address of add-checkpoint and of the cosigned checkpoints'],
  ['LINKGW_WITNESS_DIR', '<data>/witness', 'linkgw witness: its key and its state (the last checkpoint it cosigned of each log)'],
  ['LINKGW_WITNESS_NAME', 'linkgw-witness/<host name>', 'linkgw witness: the witness\'s key name'],
  ['LINKGW_WITNESS_LOGS', '(required for linkgw witness)', 'linkgw witness: logs it cosigns, VKEY or ORIGIN_PREFIX*=BASE64_KEY, comma-separated'],
  ['LINKGW_LOG_LEVEL', 'info', 'debug, info, warn or error'],
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

const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function replicaId(v: string | undefined): string {
  const id = v || hostname();
  if (!REPLICA_ID.test(id)) throw new Error(`LINKGW_REPLICA_ID: letters, digits, '.', '_' and '-', at most 63 (${v ? 'given' : 'the host name is'} "${id}")`);
  return id;
}

function originPrefix(v: string | undefined): string {
  const p = (v || 'linkgw/records').replace(/\/+$/, '');
  if (!p || /[\s+]/.test(p)) throw new Error('LINKGW_LOG_ORIGIN_PREFIX: no spaces and no plus sign (it becomes a note key name)');
  return p;
}

/** `VKEY=URL,…`: the verifier key has no '=' (a 33-byte key is 44 base64 characters without padding). */
function witnesses(v: string | undefined): Settings['witnesses'] {
  if (!v?.trim()) return [];
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf('=');
      const vkey = entry.slice(0, at);
      const url = entry.slice(at + 1).replace(/\/+$/, '');
      if (at <= 0 || !/^https?:\/\//.test(url) || !URL.canParse(url)) throw new Error(`LINKGW_WITNESSES: "${entry}" is not VKEY=http(s)://…`);
      return { vkey, url };
    });
}

function logLevel(v: string | undefined): Settings['logLevel'] {
  const level = v || 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new Error('LINKGW_LOG_LEVEL: debug, info, warn or error');
  return level as Settings['logLevel'];
}

/** Settings of `linkgw witness`. */
export function witnessSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): WitnessSettings {
  const dataDir = resolve(env.LINKGW_DATA_DIR || './data');
  const logs = (env.LINKGW_WITNESS_LOGS ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (logs.length === 0) throw new Error('LINKGW_WITNESS_LOGS: the logs to witness are required (see linkgw keys show)');
  const name = env.LINKGW_WITNESS_NAME || `linkgw-witness/${hostname()}`;
  if (/[\s+]/.test(name)) throw new Error('LINKGW_WITNESS_NAME: no spaces and no plus sign (it is a note key name)');
  return {
    listen: env.LINKGW_WITNESS_LISTEN || '127.0.0.1:7380',
    dir: resolve(env.LINKGW_WITNESS_DIR || join(dataDir, 'witness')),
    name,
    logs,
    logLevel: logLevel(env.LINKGW_LOG_LEVEL),
  };
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
  const replica = replicaId(env.LINKGW_REPLICA_ID);
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
    logLevel: level as Settings['logLevel'],
    replicaId: replica,
    logOrigin: `${originPrefix(env.LINKGW_LOG_ORIGIN_PREFIX)}/${replica}`,
    checkpointIntervalMs: positive(env.LINKGW_CHECKPOINT_INTERVAL_MS, 1000, 'LINKGW_CHECKPOINT_INTERVAL_MS'),
    witnesses: witnesses(env.LINKGW_WITNESSES),
  };
}
