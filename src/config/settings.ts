/**
 * Settings from the environment: one schema, `SETTINGS` below, names every LINKGW_* variable the gateway reads.
 * Everything has an embedded default that runs the whole gateway on one machine with no outside servers
 * (SQLite records, inline mapping, dev PKI and keyring created in the data directory, the simulated agencies
 * in-process). The schema is strict: an unknown LINKGW_* variable (with a "did you mean" when one is close)
 * or an invalid value stops the start with a message naming the variable; every problem is reported at once.
 *
 * ADDING A SETTING is one entry in `SETTINGS`:
 *
 *     replicaId: setting('LINKGW_REPLICA_ID', {
 *       doc: 'name of this replica in record chains and metrics',
 *       schema: text.regex(/^[a-z0-9-]{1,32}$/, { error: 'lower-case letters, digits and -' }),
 *                                      // a zod schema from the raw string to the value (builders below:
 *                                      // text, address(), flag, oneOf([...]), number(), count, ms, path, url())
 *       default: 'r1',                 // a raw default, parsed by the schema like a set value; or
 *       // derive: (s) => …,           // a default computed from the other settings (s.dataDir, …); or
 *       // neither, with `shown`:     the value is undefined when the variable is unset
 *       // secret: true,               // never echo the value in an error; also reads NAME_FILE (a file
 *                                      // holding the value, as container secrets are mounted)
 *     }),
 *
 * The key is the `Settings` field (`settings.replicaId`), typed by the schema's output; a dotted key nests
 * (`'tls.ca'` is `settings.tls.ca`). `ENV_DOC` (`linkgw --help`), the unknown-variable check and the tests
 * that the README and deploy/linkgw.env.example list every setting all follow from the entry. A rule across
 * settings goes in `CHECKS`.
 *
 * An empty value counts as unset (an `EnvironmentFile` line `LINKGW_RECORDS_URL=` keeps the default).
 * LINKGW_TEST_* and LINKGW_BENCH_* are reserved for the test suite and the benchmarks, never read here.
 *
 * Why zod (4) and not envalid: the same library validates the JSON policy files' shape where needed and
 * gives typed outputs from one declaration, so `Settings` is inferred from the schema instead of written
 * twice; envalid knows only flat environment strings and would still need a hand-written type.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The package root (holds config/ and proto/), found from this file in src/ or dist/. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------------------------------------------------
// Schema builders: each parses the raw string of one variable.

/** What is wrong with a host:port address, or undefined. `listen`: port 0 (a free port) is allowed. */
export function addressProblem(v: string, o: { listen?: boolean } = {}): string | undefined {
  const i = v.lastIndexOf(':');
  if (i < 0) return 'host:port is required (for example 127.0.0.1:50051)';
  const host = v.slice(0, i);
  const port = v.slice(i + 1);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `"${port}" is not a port (0–65535)`;
  if (!o.listen && Number(port) === 0) return 'port 0 only makes sense for an address to listen on';
  if (host.startsWith('[') && host.endsWith(']')) return isIPv6(host.slice(1, -1)) ? undefined : `"${host}" is not an IPv6 address`;
  if (host.includes(':')) return 'an IPv6 address goes in brackets, as [::1]:50051';
  if (/^[\d.]+$/.test(host)) return isIPv4(host) ? undefined : `"${host}" is not an IPv4 address`;
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  if (!host || host.length > 253 || !host.split('.').every((l) => label.test(l))) return `"${host}" is not a host name`;
  return undefined;
}

/** host:port whose host is a loopback address. */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '').toLowerCase();
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost';
}

const text = z.string({ error: 'a value is required' });
const address = (o: { listen?: boolean } = {}) =>
  text.superRefine((v, ctx) => {
    const p = addressProblem(v, o);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });
const flag = z.stringbool({ truthy: ['1', 'true', 'yes', 'on'], falsy: ['0', 'false', 'no', 'off'], error: '1 or 0 (also true/false, yes/no, on/off)' });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: `one of ${values.join(', ')}` });
const number = (o: { integer?: boolean; unit?: string } = {}) =>
  text
    .regex(o.integer ? /^\d+$/ : /^\d+(\.\d+)?$/, { error: o.integer ? `a whole number${o.unit ? ` of ${o.unit}` : ''}` : `a number${o.unit ? ` of ${o.unit}` : ''}` })
    .transform(Number)
    .pipe(z.number().positive({ error: 'above 0' }));
const count = number({ integer: true });
/** A whole number that may be 0. */
const whole = text.regex(/^\d+$/, { error: 'a whole number (0 or more)' }).transform(Number);
const ms = number({ integer: true, unit: 'milliseconds' });
const path = text.min(1).transform((p) => resolve(p));
const url = (schemes: readonly string[], what: string) =>
  text.superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL; ${what}` });
      return;
    }
    if (!schemes.includes(u.protocol)) ctx.addIssue({ code: 'custom', message: `${u.protocol}// is not ${schemes.map((s) => `${s}//`).join(' or ')}; ${what}` });
  });
/** redis://host:port/db, rediss://…, or redis+cluster://h1:p1,h2:p2 (the grammar of src/redis/redis-connection.ts). */
const redisUrl = text.superRefine((v, ctx) => {
  const m = /^(rediss?)(\+cluster)?:\/\/(?:[^@/]*@)?([^/?#]+)(\/[^?#]*)?(?:[?#].*)?$/.exec(v);
  if (!m) return void ctx.addIssue({ code: 'custom', message: 'redis://host:port/db, rediss://…, redis+cluster://h1:p1,h2:p2 or rediss+cluster://…' });
  const [, , cluster, hosts, db] = m;
  for (const h of cluster ? hosts!.split(',') : [hosts!]) {
    const p = addressProblem(h.includes(':') && !h.endsWith(']') ? h : `${h}:6379`);
    if (p) ctx.addIssue({ code: 'custom', message: `node ${h}: ${p}` });
  }
  if (cluster && db && db !== '/') ctx.addIssue({ code: 'custom', message: 'a cluster URL has no database number' });
  if (!cluster && db && db !== '/' && !/^\/\d+$/.test(db)) ctx.addIssue({ code: 'custom', message: `"${db.slice(1)}" is not a database number` });
});
/** default=R/B,agency=R/B (the grammar of parseRateLimitSpec in src/limits/rate-limiter.ts). */
const rateLimitSpec = text.superRefine((v, ctx) => {
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=\s]+)\s*=\s*([0-9.]+)(?:\s*\/\s*([0-9.]+))?$/.exec(part);
    if (!m || !Number.isFinite(Number(m[2])) || (m[3] !== undefined && !(Number(m[3]) >= 1)))
      ctx.addIssue({ code: 'custom', message: `"${part}" is not agency=rate[/burst] (for example default=5000/10000,tax=2000/4000)` });
  }
});

const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** A note key name (log origin, witness name): no spaces and no plus sign. */
const noteName = text.transform((v) => v.replace(/\/+$/, '')).pipe(text.regex(/^[^\s+]+$/, { error: 'no spaces and no plus sign (it becomes a note key name)' }));
const list = text.transform((v) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
/** `VKEY=URL,…`: the verifier key has no '=' (a 33-byte key is 44 base64 characters without padding). */
const witnessList = list.transform((entries, ctx) =>
  entries.map((entry) => {
    const at = entry.indexOf('=');
    const vkey = entry.slice(0, at);
    const url = entry.slice(at + 1).replace(/\/+$/, '');
    if (at <= 0 || !/^https?:\/\//.test(url) || !URL.canParse(url)) ctx.addIssue({ code: 'custom', message: `"${entry}" is not VKEY=http(s)://…` });
    return { vkey, url };
  }),
);

// ---------------------------------------------------------------------------------------------------------
// The schema.

interface Setting<T> {
  readonly env: string;
  readonly doc: string;
  /** The default as documentation shows it. */
  readonly shown: string;
  readonly schema: z.ZodType<T, string>;
  readonly default?: string;
  readonly derive?: (s: Readonly<Record<string, unknown>>) => T;
  /** Never echoed in an error; also read from NAME_FILE. */
  readonly secret?: boolean;
  /** Never echoed in an error (a secret whose _FILE form is its own setting). */
  readonly redact?: boolean;
}

type Common<S extends z.ZodType> = { doc: string; schema: S; secret?: boolean; redact?: boolean };
function setting<S extends z.ZodType<unknown, string>>(env: string, o: Common<S> & { default: string; shown?: string }): Setting<z.output<S>>;
function setting<S extends z.ZodType<unknown, string>>(env: string, o: Common<S> & { derive: (s: Readonly<Record<string, unknown>>) => z.output<S>; shown: string }): Setting<z.output<S>>;
function setting<S extends z.ZodType<unknown, string>>(env: string, o: Common<S> & { shown: string }): Setting<z.output<S> | undefined>;
function setting(env: string, o: Common<z.ZodType<unknown, string>> & { default?: string; derive?: (s: Readonly<Record<string, unknown>>) => unknown; shown?: string }): Setting<unknown> {
  return { env, ...o, shown: o.shown ?? o.default! };
}

const inPki = (file: string) => (s: Readonly<Record<string, unknown>>) => join(s.dataDir as string, 'pki', file);

export const SETTINGS = {
  dataDir: setting('LINKGW_DATA_DIR', { doc: 'keyring, dev PKI, SQLite records and other state', schema: path, default: './data' }),
  listen: setting('LINKGW_LISTEN', { doc: 'gRPC address (mTLS), host:port; port 0 picks a free port', schema: address({ listen: true }), default: '127.0.0.1:50051' }),
  healthListen: setting('LINKGW_HEALTH_LISTEN', {
    doc: 'plaintext grpc.health.v1 for the kubelet and grpc_health_probe (no client certificate; nothing but Health), host:port',
    schema: address({ listen: true }),
    shown: '(unset: health only on the mTLS port)',
  }),
  metricsListen: setting('LINKGW_METRICS_LISTEN', { doc: 'HTTP address of /metrics, /healthz, /readyz', schema: address({ listen: true }), default: '127.0.0.1:9464' }),
  agenciesFile: setting('LINKGW_AGENCIES', { doc: 'agency registry file', schema: path, derive: () => join(PACKAGE_ROOT, 'config', 'agencies.json'), shown: 'config/agencies.json' }),
  legalBasisFile: setting('LINKGW_LEGAL_BASIS', { doc: 'legal-basis table file', schema: path, derive: () => join(PACKAGE_ROOT, 'config', 'legal-basis.json'), shown: 'config/legal-basis.json' }),
  recordsUrl: setting('LINKGW_RECORDS_URL', {
    doc: 'postgres://user@host:5432/db?schema=name keeps access records in PostgreSQL',
    schema: url(['postgres:', 'postgresql:'], 'postgres://user@host:5432/db'),
    shown: '(unset: SQLite at <data>/records.sqlite)',
    secret: true,
  }),
  recordsMigrate: setting('LINKGW_RECORDS_MIGRATE', {
    doc: 'auto: apply pending record store schema migrations at start; verify: refuse to start unless the schema is current (migrations run by `linkgw migrate`, so the runtime role needs no DDL rights)',
    schema: oneOf(['auto', 'verify']),
    default: 'auto',
  }),
  'tls.ca': setting('LINKGW_TLS_CA', { doc: 'the CA agencies\' certificates are checked against', schema: path, derive: inPki('ca.crt'), shown: '<data>/pki/ca.crt' }),
  'tls.cert': setting('LINKGW_TLS_CERT', { doc: 'the gateway certificate (also its client certificate towards providers)', schema: path, derive: inPki('gateway.crt'), shown: '<data>/pki/gateway.crt' }),
  'tls.key': setting('LINKGW_TLS_KEY', { doc: 'the gateway certificate\'s private key', schema: path, derive: inPki('gateway.key'), shown: '<data>/pki/gateway.key' }),
  insecurePlaintext: setting('LINKGW_INSECURE_PLAINTEXT', {
    doc: '1: no TLS, callers name themselves (development only, loopback addresses only; logs a warning)',
    schema: flag,
    default: '0',
  }),
  simulate: setting('LINKGW_SIMULATE', { doc: '1: start the simulated providing agencies in-process; 0 (production): call the registry addresses', schema: flag, default: '1' }),
  providerTimeoutMs: setting('LINKGW_PROVIDER_TIMEOUT_MS', { doc: 'the longest a provider call may take, whatever the caller\'s deadline', schema: ms, default: '5000' }),
  engine: setting('LINKGW_ENGINE', { doc: 'auto (single calls inline, batches on worker threads), inline or pool: where codes are computed', schema: oneOf(['auto', 'inline', 'pool']), default: 'auto' }),
  redisUrl: setting('LINKGW_REDIS_URL', {
    doc: 'redis://host:port/db or redis+cluster://h1:p1,h2:p2: shared rate limits, idempotency, cache',
    schema: redisUrl,
    shown: '(unset)',
    secret: true,
  }),
  redisKeyPrefix: setting('LINKGW_REDIS_KEY_PREFIX', { doc: 'prefix of every Redis key the gateway writes, so deployments (and test runs) can share one Redis', schema: text.regex(/^\S{1,64}$/, { error: '1 to 64 characters, no spaces' }), default: 'linkgw:' }),
  redisCommandTimeoutMs: setting('LINKGW_REDIS_COMMAND_TIMEOUT_MS', { doc: 'a Redis command slower than this counts as a failure and local state is used', schema: ms, default: '50' }),
  cache: setting('LINKGW_CACHE', {
    doc: 'off, local or local,redis: conversion cache tiers (computing is faster with local keys)',
    schema: text.transform((v) => v.replace(/\s+/g, '')).pipe(oneOf(['off', 'local', 'local,redis'])),
    default: 'off',
  }),
  rateLimit: setting('LINKGW_RATE_LIMIT', { doc: 'per-agency requests/s and burst: default=R/B,agency=R/B,…', schema: rateLimitSpec, default: 'default=5000/10000' }),
  rateLimitReplicas: setting('LINKGW_RATE_LIMIT_REPLICAS', { doc: 'replicas sharing the limits; each takes 1/n locally when Redis is away', schema: count, default: '1' }),
  idempotencyWindowMs: setting('LINKGW_IDEMPOTENCY_WINDOW_S', {
    doc: 'how long a QueryInformation x-request-id replays its first outcome, seconds',
    schema: number({ unit: 'seconds' }).transform((s) => s * 1000),
    default: '600',
  }),
  poolThreads: setting('LINKGW_POOL_THREADS', { doc: 'worker threads of the mapping pool', schema: count, shown: '(cores − 1, at least 1)' }),
  maxInFlight: setting('LINKGW_MAX_IN_FLIGHT', { doc: 'calls handled at once; more are refused with RESOURCE_EXHAUSTED', schema: count, default: '4096' }),
  maxInFlightPerAgency: setting('LINKGW_MAX_IN_FLIGHT_PER_AGENCY', {
    doc: 'calls one agency may have in flight (streams count for their whole life; at most LINKGW_MAX_IN_FLIGHT)',
    schema: count,
    derive: (s) => Math.ceil((s.maxInFlight as number) / 2),
    shown: 'half of LINKGW_MAX_IN_FLIGHT',
  }),
  providerMaxInFlight: setting('LINKGW_PROVIDER_MAX_IN_FLIGHT', {
    doc: 'queries to one providing agency at once; more are refused at once with RESOURCE_EXHAUSTED, so a provider that never answers holds only these slots',
    schema: count,
    derive: (s) => Math.max(1, Math.floor(Math.min((s.maxInFlight as number) / 4, Math.min(s.maxInFlight as number, s.maxInFlightPerAgency as number) / 2))),
    shown: 'a quarter of LINKGW_MAX_IN_FLIGHT, at most half of LINKGW_MAX_IN_FLIGHT_PER_AGENCY',
  }),
  providerBreakerFailures: setting('LINKGW_PROVIDER_BREAKER_FAILURES', {
    doc: "queries in a row that a provider leaves without an answer (unreachable, or timed out after a fair wait) before its circuit breaker opens: its queries then fail at once with UNAVAILABLE",
    schema: count,
    default: '5',
  }),
  providerBreakerOpenMs: setting('LINKGW_PROVIDER_BREAKER_OPEN_MS', {
    doc: "how long an open provider breaker refuses queries before it lets one through as a probe; the probe's answer closes it",
    schema: ms,
    default: '1000',
  }),
  recordTimeoutMs: setting('LINKGW_RECORD_TIMEOUT_MS', {
    doc: 'longest a request waits for its access record (UNAVAILABLE after; /readyz is 503 while a commit takes longer)',
    schema: ms,
    default: '10000',
  }),
  recordLingerMs: setting('LINKGW_RECORD_LINGER_MS', {
    doc: 'a batch of access records whose first record has waited less than this (and that holds fewer than 64) waits that long for more, so one commit and one fsync cover several records at moderate rates; 0 = off. Every answer still waits for its record\'s commit',
    schema: whole,
    default: '0',
  }),
  recordStoreTimeoutMs: setting('LINKGW_RECORD_STORE_TIMEOUT_MS', {
    doc: 'client-side deadline of one record store operation (a commit, a read); a connection that misses it is closed and the commit tried again on a fresh one',
    schema: ms,
    default: '3000',
  }),
  recordStoreWaitMs: setting('LINKGW_RECORD_STORE_WAIT_S', {
    doc: 'at start, how long to wait for PostgreSQL to accept connections (each attempt logged) before giving up, seconds; 0: fail at once',
    schema: whole.transform((v) => v * 1000),
    default: '60',
  }),
  inFlightReserve: setting('LINKGW_IN_FLIGHT_RESERVE', {
    doc: 'slots that agencies over their guaranteed share (max / agencies) may not borrow: kept for the others',
    schema: whole,
    derive: (s) => Math.floor((s.maxInFlight as number) / 4),
    shown: 'a quarter of LINKGW_MAX_IN_FLIGHT',
  }),
  maxStreamsPerAgency: setting('LINKGW_MAX_STREAMS_PER_AGENCY', { doc: 'IssueCodes, Health.Watch and reflection streams one agency may have open at once', schema: count, default: '8' }),
  streamIdleTimeoutMs: setting('LINKGW_STREAM_IDLE_TIMEOUT_MS', { doc: 'a stream with no progress (no message sent, no answer read) for this long is ended', schema: ms, default: '60000' }),
  tlsHandshakeTimeoutMs: setting('LINKGW_TLS_HANDSHAKE_TIMEOUT_MS', { doc: 'a connection that has not finished its TLS handshake by then is closed', schema: ms, default: '5000' }),
  maxConnections: setting('LINKGW_MAX_CONNECTIONS', { doc: 'established agency connections at once (TLS handshakes in progress have their own budget, LINKGW_MAX_HANDSHAKES)', schema: count, default: '2048' }),
  maxConnectionsPerPeer: setting('LINKGW_MAX_CONNECTIONS_PER_PEER', { doc: 'connections from one IP address at once (agencies may share an egress proxy)', schema: count, default: '128' }),
  maxHandshakes: setting('LINKGW_MAX_HANDSHAKES', {
    doc: 'TLS handshakes in progress at once, apart from established connections; when full, a new connection closes the most stalled handshake',
    schema: count,
    default: '256',
  }),
  maxConnectionsPerAgency: setting('LINKGW_MAX_CONNECTIONS_PER_AGENCY', { doc: 'established connections one agency may hold at once; more are closed after the handshake', schema: count, default: '64' }),
  connectionShare: setting('LINKGW_CONNECTION_SHARE', { doc: 'an agency holding fewer connections than this is within its share: the connection reserve is kept for it', schema: count, default: '4' }),
  connectionReserve: setting('LINKGW_CONNECTION_RESERVE', {
    doc: 'connections that agencies at or over their share may not take: kept for agencies within it',
    schema: whole,
    derive: (s) => Math.floor((s.maxConnections as number) / 4),
    shown: 'a quarter of LINKGW_MAX_CONNECTIONS',
  }),
  clientCrl: setting('LINKGW_CLIENT_CRL', {
    doc: 'PEM file of CRLs from the client CA bundle\'s CAs: a revoked agency certificate is refused at the handshake; re-read when the file changes',
    schema: path,
    shown: '(unset: no revocation check)',
  }),
  clientCrlStale: setting('LINKGW_CLIENT_CRL_STALE', {
    doc: 'a CRL past its next update: open (its revocations still apply, connections are not refused for its age; reported) or closed (every certificate of its CA is refused)',
    schema: oneOf(['open', 'closed']),
    default: 'open',
  }),
  maxMetadataBytes: setting('LINKGW_MAX_METADATA_BYTES', {
    doc: 'largest header block of a request (its metadata, uncompressed, as HTTP/2 counts it: names + values + 32 per field); a larger one resets its stream before any metadata is built from it',
    schema: count,
    default: '8192',
  }),
  maxMetadataEntries: setting('LINKGW_MAX_METADATA_ENTRIES', { doc: 'header fields of a request (pseudo-headers included); more reset the stream', schema: count, default: '32' }),
  maxStreamsPerConnection: setting('LINKGW_MAX_STREAMS_PER_CONNECTION', { doc: 'concurrent HTTP/2 streams per connection (advertised in SETTINGS; clients queue beyond it)', schema: count, default: '256' }),
  streamResetsPerConnection: setting('LINKGW_STREAM_RESETS_PER_CONNECTION', {
    doc: 'streams a connection may reset (RST_STREAM before their status) at once, refilled at a tenth of it per second and by one per call answered; more close the connection (HTTP/2 rapid reset)',
    schema: count,
    default: '512',
  }),
  streamResetsPerAgency: setting('LINKGW_STREAM_RESETS_PER_AGENCY', {
    doc: 'streams one agency may reset across its connections at once, refilled at a tenth of it per second and by one per call answered; past it, a connection that resets a stream is closed',
    schema: count,
    default: '2048',
  }),
  streamBufferBytes: setting('LINKGW_STREAM_BUFFER_BYTES', { doc: 'unanswered request bytes one stream may hold before the gateway stops reading it (HTTP/2 flow control)', schema: count, default: '524288' }),
  agencyBufferBytes: setting('LINKGW_AGENCY_BUFFER_BYTES', { doc: 'unanswered request bytes one agency may hold across its streams before they stop being read', schema: count, default: '16777216' }),
  rateLimitBulk: setting('LINKGW_RATE_LIMIT_BULK', {
    doc: 'per-agency bulk issuance: personal numbers/s and burst (default=R/B,agency=R/B); a faster stream is paced, not failed',
    schema: rateLimitSpec,
    default: 'default=50000/500000',
  }),
  keyringPassphraseFile: setting('LINKGW_KEYRING_PASSPHRASE_FILE', { doc: 'file holding the passphrase of a passphrase-wrapped keyring (linkgw keys wrap)', schema: path, shown: '(unset)' }),
  keyringPassphrase: setting('LINKGW_KEYRING_PASSPHRASE', { doc: 'the passphrase itself (prefer the _FILE form: the environment is easier to leak)', schema: text, shown: '(unset)', redact: true }),
  pkcs11Module: setting('LINKGW_PKCS11_MODULE', { doc: 'PKCS#11 module (.so) of the HSM holding the sealing key and the key that wraps the keyring', schema: path, shown: '(unset: keys in the keyring file)' }),
  pkcs11Token: setting('LINKGW_PKCS11_TOKEN', { doc: 'label of the PKCS#11 token', schema: text.min(1), shown: 'linkgw' }),
  pkcs11PinFile: setting('LINKGW_PKCS11_PIN_FILE', { doc: 'file holding the token user PIN', schema: path, shown: '(this or LINKGW_PKCS11_PIN with a module)' }),
  pkcs11Pin: setting('LINKGW_PKCS11_PIN', { doc: 'the token user PIN itself (prefer the _FILE form)', schema: text, shown: '(unset)', redact: true }),
  devCaDir: setting('LINKGW_DEV_CA_DIR', {
    doc: 'where the development CA key is kept (never in the data dir; the gateway does not read it)',
    schema: path,
    derive: (s) => `${s.dataDir as string}-dev-ca`,
    shown: '<data dir>-dev-ca',
  }),
  replicaId: setting('LINKGW_REPLICA_ID', {
    doc: "this replica's transparency log, kept for its life and resumed after a restart (letters, digits, . _ -)",
    schema: text.regex(REPLICA_ID, { error: "letters, digits, '.', '_' and '-', at most 63" }),
    derive: () => hostname(),
    shown: '(the host name)',
  }),
  logOriginPrefix: setting('LINKGW_LOG_ORIGIN_PREFIX', { doc: 'the log origin (checkpoint note key name) is PREFIX/REPLICA_ID: make it unique to the deployment', schema: noteName, default: 'linkgw/records' }),
  checkpointIntervalMs: setting('LINKGW_CHECKPOINT_INTERVAL_MS', { doc: 'a checkpoint of the log is signed at most this often while records arrive', schema: ms, default: '1000' }),
  witnesses: setting('LINKGW_WITNESSES', { doc: 'witnesses that cosign checkpoints: VKEY=URL,… (C2SP tlog-witness; URL is the submission prefix)', schema: witnessList, shown: '(unset)' }),
  'witness.listen': setting('LINKGW_WITNESS_LISTEN', { doc: 'linkgw witness: HTTP address of add-checkpoint and of the cosigned checkpoints', schema: address({ listen: true }), default: '127.0.0.1:7380' }),
  'witness.dir': setting('LINKGW_WITNESS_DIR', {
    doc: 'linkgw witness: its key and its state (the last checkpoint it cosigned of each log)',
    schema: path,
    derive: (s) => join(s.dataDir as string, 'witness'),
    shown: '<data>/witness',
  }),
  'witness.name': setting('LINKGW_WITNESS_NAME', { doc: "linkgw witness: the witness's key name", schema: noteName, derive: () => `linkgw-witness/${hostname()}`, shown: 'linkgw-witness/<host name>' }),
  'witness.logs': setting('LINKGW_WITNESS_LOGS', { doc: 'linkgw witness: logs it cosigns, VKEY or ORIGIN_PREFIX*=BASE64_KEY, comma-separated', schema: list, shown: '(required for linkgw witness)' }),
  'portal.listen': setting('LINKGW_PORTAL_LISTEN', {
    doc: 'linkgw portal: the citizen portal\'s address (plain HTTP on loopback only; HTTPS with LINKGW_PORTAL_TLS_CERT and _KEY); WebAuthn needs a host name',
    schema: address({ listen: true }),
    default: 'localhost:8080',
  }),
  'portal.tlsCert': setting('LINKGW_PORTAL_TLS_CERT', { doc: 'linkgw portal: its HTTPS certificate chain (PEM)', schema: path, shown: '(unset: plain HTTP, loopback only)' }),
  'portal.tlsKey': setting('LINKGW_PORTAL_TLS_KEY', { doc: 'linkgw portal: the HTTPS certificate\'s private key (PEM)', schema: path, shown: '(unset)' }),
  'portal.origin': setting('LINKGW_PORTAL_ORIGIN', {
    doc: 'linkgw portal: the origin browsers use (https://portal.example.jp) when it differs from the listen address (a proxy in front); the WebAuthn relying party',
    schema: url(['https:', 'http:'], 'https://host[:port]').transform((v) => new URL(v).origin),
    shown: '(from LINKGW_PORTAL_LISTEN)',
  }),
  'portal.verifierKeys': setting('LINKGW_PORTAL_VERIFIER_KEYS', {
    doc: 'linkgw portal: file of note verifier keys the browser trusts, one a line (logs\' keys as `linkgw keys show` prints them, witnesses\' keys)',
    schema: path,
    shown: '(unset: the local data directory\'s log keys, for development)',
  }),
  'portal.devSignIn': setting('LINKGW_PORTAL_DEV_SIGNIN', {
    doc: 'linkgw portal: 1 adds a sign-in form taking a personal number (development and tests only; loopback only)',
    schema: flag,
    default: '0',
  }),
  'portal.dir': setting('LINKGW_PORTAL_DIR', {
    doc: 'linkgw portal: its state (enrollment codes, passkeys; no personal number)',
    schema: path,
    derive: (s) => join(s.dataDir as string, 'portal'),
    shown: '<data>/portal',
  }),
  logLevel: setting('LINKGW_LOG_LEVEL', { doc: 'debug, info, warn or error (JSON lines on stderr)', schema: oneOf(['debug', 'info', 'warn', 'error']), default: 'info' }),
  accessLog: setting('LINKGW_ACCESS_LOG', {
    doc: 'one log line per call (method, agency, status, duration, record id, request and trace ids): on (at info), off, or the level to log it at',
    schema: oneOf(['on', 'off', 'debug', 'info', 'warn', 'error']).transform((v) => (v === 'on' ? 'info' : v)),
    default: 'on',
  }),
} as const;

/** A secret given in a file (preferred: it stays out of the environment) or in an environment variable. */
export type SecretSource = { readonly file: string } | { readonly value: string };

export type KeyringSettings =
  | { readonly backend: 'plain' }
  | { readonly backend: 'passphrase'; readonly passphrase: SecretSource }
  | { readonly backend: 'pkcs11'; readonly module: string; readonly token: string; readonly pin: SecretSource };

function secretSource(file: string | undefined, value: string | undefined): SecretSource | undefined {
  return file ? { file } : value ? { value } : undefined;
}

/** Where the keyring's secrets are protected: the plain file, the file under a passphrase, or a PKCS#11 token. */
function keyringOf(s: Nested<Values>): KeyringSettings {
  const passphrase = secretSource(s.keyringPassphraseFile, s.keyringPassphrase);
  const pin = secretSource(s.pkcs11PinFile, s.pkcs11Pin);
  if (!s.pkcs11Module) return passphrase ? { backend: 'passphrase', passphrase } : { backend: 'plain' };
  return { backend: 'pkcs11', module: s.pkcs11Module, token: s.pkcs11Token ?? 'linkgw', pin: pin! };
}

/** Rules across settings: each returns the problem, naming the variables, or undefined. */
const CHECKS: readonly ((s: Nested<Values>) => string | undefined)[] = [
  (s) => (REPLICA_ID.test(s.replicaId) ? undefined : `LINKGW_REPLICA_ID: the host name "${s.replicaId}" is not a replica id (letters, digits, '.', '_' and '-'); set LINKGW_REPLICA_ID`),
  (s) => (s.keyringPassphrase && s.keyringPassphraseFile ? 'LINKGW_KEYRING_PASSPHRASE and LINKGW_KEYRING_PASSPHRASE_FILE: set one, not both' : undefined),
  (s) => (s.pkcs11Pin && s.pkcs11PinFile ? 'LINKGW_PKCS11_PIN and LINKGW_PKCS11_PIN_FILE: set one, not both' : undefined),
  (s) => (!s.pkcs11Module && (s.pkcs11Pin || s.pkcs11PinFile || s.pkcs11Token) ? 'LINKGW_PKCS11_TOKEN and LINKGW_PKCS11_PIN need LINKGW_PKCS11_MODULE' : undefined),
  (s) => (s.pkcs11Module && !s.pkcs11Pin && !s.pkcs11PinFile ? 'LINKGW_PKCS11_MODULE needs the token PIN: LINKGW_PKCS11_PIN_FILE or LINKGW_PKCS11_PIN' : undefined),
  // One protection at a time: a passphrase next to an HSM would suggest a second layer that is not there.
  (s) =>
    s.pkcs11Module && (s.keyringPassphrase || s.keyringPassphraseFile)
      ? 'LINKGW_KEYRING_PASSPHRASE and LINKGW_PKCS11_MODULE: a keyring is protected by a passphrase or by a token, not both'
      : undefined,
  // Without TLS a caller names its own agency: that must never be reachable from another machine.
  (s) =>
    s.insecurePlaintext && !isLoopbackListen(s.listen)
      ? `LINKGW_INSECURE_PLAINTEXT=1 listens only on a loopback address (127.0.0.1, [::1] or localhost), never on ${s.listen} (LINKGW_LISTEN)`
      : undefined,
];

/** After the checks: values that follow from others. */
function finish(s: Nested<Values>): Settings {
  return {
    ...s,
    maxInFlightPerAgency: Math.min(s.maxInFlight, s.maxInFlightPerAgency),
    inFlightReserve: Math.min(s.maxInFlight, s.inFlightReserve),
    providerMaxInFlight: Math.min(s.maxInFlight, s.providerMaxInFlight),
    maxConnectionsPerAgency: Math.min(s.maxConnections, s.maxConnectionsPerAgency),
    connectionReserve: Math.min(s.maxConnections, s.connectionReserve),
    keyring: keyringOf(s),
    logOrigin: `${s.logOriginPrefix}/${s.replicaId}`,
    witnesses: s.witnesses ?? [],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Types and the reader.

type Values = { -readonly [K in keyof typeof SETTINGS]: (typeof SETTINGS)[K] extends Setting<infer T> ? T : never };
type Groups<V> = keyof V extends infer K ? (K extends `${infer G}.${string}` ? G : never) : never;
type Nested<V> = { readonly [K in keyof V as K extends `${string}.${string}` ? never : K]: V[K] } & {
  readonly [G in Groups<V>]: { readonly [K in keyof V as K extends `${G}.${infer R}` ? R : never]: V[K] };
};
/** The gateway's settings, one field per entry of SETTINGS (dotted keys nested), and what follows from them. */
export type Settings = Nested<Values> & {
  readonly keyring: KeyringSettings;
  /** The log's origin and note key name: `<LINKGW_LOG_ORIGIN_PREFIX>/<replicaId>`. */
  readonly logOrigin: string;
  /** Witnesses asked to cosign each checkpoint (C2SP tlog-witness add-checkpoint): their key and URL prefix. */
  readonly witnesses: readonly { readonly vkey: string; readonly url: string }[];
};

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

/** Settings of `linkgw witness` (the same schema: LINKGW_WITNESS_*). */
export function witnessSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): WitnessSettings {
  const s = settingsFromEnv(env);
  const logs = s.witness.logs ?? [];
  if (logs.length === 0) throw new SettingsError(['LINKGW_WITNESS_LOGS: the logs to witness are required (see linkgw keys show)']);
  return { listen: s.witness.listen, dir: s.witness.dir, name: s.witness.name, logs, logLevel: s.logLevel };
}

/** The settings of `linkgw portal`, a process of its own, with the rules that only it needs. */
export function portalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const s = settingsFromEnv(env);
  const p = s.portal;
  const problems = [
    Boolean(p.tlsCert) !== Boolean(p.tlsKey) ? 'LINKGW_PORTAL_TLS_CERT and LINKGW_PORTAL_TLS_KEY: set both, or neither' : undefined,
    // A portal without TLS would send session cookies in clear: only to the same machine.
    !p.tlsCert && !isLoopbackListen(p.listen) ? `LINKGW_PORTAL_LISTEN=${p.listen}: plain HTTP only on a loopback address; set LINKGW_PORTAL_TLS_CERT and LINKGW_PORTAL_TLS_KEY` : undefined,
    // The development sign-in binds whoever types a number to that person: never reachable from another machine.
    p.devSignIn && !isLoopbackListen(p.listen) ? `LINKGW_PORTAL_DEV_SIGNIN=1 only with LINKGW_PORTAL_LISTEN on a loopback address, never on ${p.listen}` : undefined,
  ].filter((x): x is string => x !== undefined);
  if (problems.length) throw new SettingsError(problems);
  return s;
}

/** [variable, default as shown, meaning] for each setting, in schema order (`linkgw --help`, the README test). */
export const ENV_DOC: readonly [string, string, string][] = Object.values(SETTINGS).map((e: Setting<unknown>) => [e.env, e.shown, e.doc]);

/** Every variable name the schema knows, with the NAME_FILE variants of secrets. */
export const KNOWN_VARIABLES: ReadonlySet<string> = new Set(
  Object.values(SETTINGS).flatMap((e: Setting<unknown>) => (e.secret ? [e.env, `${e.env}_FILE`] : [e.env])),
);

const RESERVED = /^LINKGW_(TEST|BENCH)_/;

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** Edit distance (insert, delete, substitute, swap of neighbours), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** The known variable closest to `name`, when it is close enough to be a typo. */
export function closestVariable(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of KNOWN_VARIABLES) {
    const dd = distance(name, k);
    if (dd < bestD) [best, bestD] = [k, dd];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor((name.length - 'LINKGW_'.length) / 4)) ? best : undefined;
}

function shownValue(e: Setting<unknown>, raw: string): string {
  return e.secret || e.redact ? '' : `=${JSON.stringify(raw)}`;
}

/**
 * Reads and checks every LINKGW_* variable of `env`; throws a SettingsError listing every problem, each naming
 * its variable.
 */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const problems: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('LINKGW_') || KNOWN_VARIABLES.has(name) || RESERVED.test(name)) continue;
    const near = closestVariable(name);
    problems.push(`${name}: not a setting of linkgw${near ? `; did you mean ${near}?` : ' (linkgw --help lists them)'}`);
  }
  const flat: Record<string, unknown> = {};
  const later: [string, Setting<unknown>][] = [];
  for (const [key, e] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    let raw = env[e.env] || undefined;
    const fileVar = `${e.env}_FILE`;
    if (e.secret && env[fileVar]) {
      if (raw !== undefined) {
        problems.push(`${e.env} and ${fileVar}: set one of them, not both`);
        continue;
      }
      try {
        raw = readFileSync(env[fileVar]!, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${fileVar}: cannot read ${env[fileVar]} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
        continue;
      }
    }
    if (raw === undefined && e.derive) {
      later.push([key, e]);
      continue;
    }
    if (raw === undefined && e.default === undefined) {
      flat[key] = undefined;
      continue;
    }
    const r = e.schema.safeParse(raw ?? e.default);
    if (r.success) flat[key] = r.data;
    else problems.push(`${e.env}${raw === undefined ? ' (default)' : shownValue(e, raw)}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length === 0) for (const [key, e] of later) flat[key] = e.derive!(flat);
  if (problems.length) throw new SettingsError(problems);
  const nested: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(flat)) {
    const dot = key.indexOf('.');
    if (dot < 0) nested[key] = v;
    else ((nested[key.slice(0, dot)] ??= {}) as Record<string, unknown>)[key.slice(dot + 1)] = v;
  }
  const s = nested as Nested<Values>;
  const crossProblems = CHECKS.map((c) => c(s)).filter((p): p is string => p !== undefined);
  if (crossProblems.length) throw new SettingsError(crossProblems);
  return finish(s);
}
