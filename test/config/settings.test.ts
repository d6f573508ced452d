import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { addressProblem, closestVariable, ENV_DOC, isLoopbackListen, KNOWN_VARIABLES, settingsFromEnv, SettingsError, type Settings } from '../../src/config/settings.js';

/** The problems settingsFromEnv reports for this environment (fails the test if it accepts it). */
function problems(env: Record<string, string>): string[] {
  try {
    settingsFromEnv(env);
  } catch (e) {
    expect(e).toBeInstanceOf(SettingsError);
    return [...(e as SettingsError).problems];
  }
  throw new Error('expected the settings to be refused');
}

describe('settings', () => {
  it('runs plaintext only on a loopback address', () => {
    for (const listen of ['127.0.0.1:50051', '127.3.2.1:0', '[::1]:50051', 'localhost:50051']) {
      expect(isLoopbackListen(listen)).toBe(true);
      expect(settingsFromEnv({ LINKGW_INSECURE_PLAINTEXT: '1', LINKGW_LISTEN: listen }).insecurePlaintext).toBe(true);
    }
    for (const listen of ['0.0.0.0:50051', '[::]:50051', '10.0.0.5:50051', 'gateway.example:50051', '127.0.0.1.example:1']) {
      expect(isLoopbackListen(listen)).toBe(false);
      expect(() => settingsFromEnv({ LINKGW_INSECURE_PLAINTEXT: '1', LINKGW_LISTEN: listen })).toThrow(/loopback/);
      // With TLS any address is fine.
      expect(settingsFromEnv({ LINKGW_LISTEN: listen }).listen).toBe(listen);
    }
  });

  it('keeps the shape the rest of the code reads, with the embedded defaults', () => {
    const s = settingsFromEnv({ LINKGW_DATA_DIR: '/srv/linkgw' });
    expectTypeOf(s.tls).toEqualTypeOf<{ readonly ca: string; readonly cert: string; readonly key: string }>();
    expectTypeOf(s.engine).toEqualTypeOf<'auto' | 'inline' | 'pool'>();
    expectTypeOf(s.poolThreads).toEqualTypeOf<number | undefined>();
    expectTypeOf(s.recordsUrl).toEqualTypeOf<string | undefined>();
    expectTypeOf(s).toMatchTypeOf<{ readonly listen: string; readonly simulate: boolean; readonly cache: 'off' | 'local' | 'local,redis'; readonly logLevel: 'debug' | 'info' | 'warn' | 'error' }>();
    expect(s).toMatchObject({
      dataDir: '/srv/linkgw',
      listen: '127.0.0.1:50051',
      metricsListen: '127.0.0.1:9464',
      tls: { ca: '/srv/linkgw/pki/ca.crt', cert: '/srv/linkgw/pki/gateway.crt', key: '/srv/linkgw/pki/gateway.key' },
      simulate: true,
      insecurePlaintext: false,
      engine: 'auto',
      cache: 'off',
      recordsUrl: undefined,
      redisUrl: undefined,
      redisKeyPrefix: 'linkgw:',
      idempotencyWindowMs: 600_000,
      maxInFlight: 4096,
      maxInFlightPerAgency: 2048,
      poolThreads: undefined,
      logLevel: 'info',
    } satisfies Partial<Settings>);
    expect(settingsFromEnv({ LINKGW_MAX_IN_FLIGHT: '6', LINKGW_MAX_IN_FLIGHT_PER_AGENCY: '20' }).maxInFlightPerAgency).toBe(6);
    // An empty value is unset (an EnvironmentFile line `LINKGW_RECORDS_URL=`).
    expect(settingsFromEnv({ LINKGW_RECORDS_URL: '', LINKGW_SIMULATE: '' })).toMatchObject({ recordsUrl: undefined, simulate: true });
  });

  it('refuses an unknown LINKGW_* variable, suggesting the setting it is closest to', () => {
    expect(problems({ LINKGW_RECORD_URL: 'postgres://db/x' })).toEqual(['LINKGW_RECORD_URL: not a setting of linkgw; did you mean LINKGW_RECORDS_URL?']);
    expect(problems({ LINKGW_LISTNE: '127.0.0.1:1' })[0]).toMatch(/did you mean LINKGW_LISTEN\?/);
    expect(problems({ LINKGW_SIMULATED: '0' })[0]).toMatch(/did you mean LINKGW_SIMULATE\?/);
    expect(problems({ LINKGW_FROBNICATE: '1' })).toEqual(['LINKGW_FROBNICATE: not a setting of linkgw (linkgw --help lists them)']);
    expect(closestVariable('LINKGW_MAX_INFLIGHT')).toBe('LINKGW_MAX_IN_FLIGHT');
    // Other programs' variables and the test suite's own are not the gateway's business.
    expect(() => settingsFromEnv({ PATH: '/bin', LINKGWX: '1', LINKGW_TEST_PG_URL: 'x', LINKGW_BENCH_REDIS_URL: 'y' })).not.toThrow();
  });

  it('names the variable and the reason of every invalid value, all at once', () => {
    const p = problems({
      LINKGW_LISTEN: '0.0.0.0',
      LINKGW_METRICS_LISTEN: 'localhost:99999',
      LINKGW_SIMULATE: 'maybe',
      LINKGW_ENGINE: 'gpu',
      LINKGW_MAX_IN_FLIGHT: '-1',
      LINKGW_PROVIDER_TIMEOUT_MS: '5s',
      LINKGW_CACHE: 'redis',
      LINKGW_RATE_LIMIT: 'default=fast',
      LINKGW_LOG_LEVEL: 'verbose',
      LINKGW_POOL_THREADS: '0',
    });
    expect(p).toEqual([
      'LINKGW_LISTEN="0.0.0.0": host:port is required (for example 127.0.0.1:50051)',
      'LINKGW_METRICS_LISTEN="localhost:99999": "99999" is not a port (0–65535)',
      'LINKGW_SIMULATE="maybe": 1 or 0 (also true/false, yes/no, on/off)',
      'LINKGW_PROVIDER_TIMEOUT_MS="5s": a whole number of milliseconds',
      'LINKGW_ENGINE="gpu": one of auto, inline, pool',
      'LINKGW_CACHE="redis": one of off, local, local,redis',
      'LINKGW_RATE_LIMIT="default=fast": "default=fast" is not agency=rate[/burst] (for example default=5000/10000,tax=2000/4000)',
      'LINKGW_POOL_THREADS="0": above 0',
      'LINKGW_MAX_IN_FLIGHT="-1": a whole number',
      'LINKGW_LOG_LEVEL="verbose": one of debug, info, warn, error',
    ]);
    expect(new SettingsError(p).message).toMatch(/^invalid configuration:\n {2}LINKGW_LISTEN/);
  });

  it('validates every host:port', () => {
    for (const ok of ['127.0.0.1:50051', '[::1]:1', '[2001:db8::1]:443', 'gateway.example.jp:50051', 'tax-provider:7001']) expect(addressProblem(ok)).toBeUndefined();
    expect(addressProblem('127.0.0.1:0', { listen: true })).toBeUndefined();
    expect(addressProblem('127.0.0.1:0')).toMatch(/port 0/);
    expect(addressProblem('127.0.0.300:1')).toMatch(/not an IPv4 address/);
    expect(addressProblem('[::g]:1')).toMatch(/not an IPv6 address/);
    expect(addressProblem('::1:50051')).toMatch(/brackets/);
    expect(addressProblem('bad_host:1')).toMatch(/not a host name/);
    expect(addressProblem(':50051')).toMatch(/not a host name/);
    expect(addressProblem('host:')).toMatch(/not a port/);
    expect(problems({ LINKGW_REDIS_URL: 'redis+cluster://a:7000,b:x' })).toEqual(['LINKGW_REDIS_URL: node b:x: "x" is not a port (0–65535)']);
    expect(settingsFromEnv({ LINKGW_REDIS_URL: 'redis+cluster://a:7000,b:7001' }).redisUrl).toBe('redis+cluster://a:7000,b:7001');
    expect(settingsFromEnv({ LINKGW_REDIS_URL: 'redis://127.0.0.1:6379/3' }).redisUrl).toBe('redis://127.0.0.1:6379/3');
    expect(problems({ LINKGW_REDIS_URL: 'redis://127.0.0.1:6379/three' })[0]).toMatch(/not a database number/);
  });

  it('never echoes a secret, and reads it from NAME_FILE', () => {
    const [p] = problems({ LINKGW_RECORDS_URL: 'mysql://root:hunter2@db/x' });
    expect(p).toMatch(/^LINKGW_RECORDS_URL: mysql:\/\/ is not postgres:\/\/ or postgresql:\/\//);
    expect(p).not.toContain('hunter2');
    // A typo's value may be a secret too: it is not shown.
    expect(problems({ LINKGW_RECORDS_UR: 'postgres://u:hunter2@db/x' })[0]).not.toContain('hunter2');
    const dir = mkdtempSync(join(tmpdir(), 'linkgw-settings-'));
    writeFileSync(join(dir, 'url'), 'postgres://u:pw@db:5432/x\n');
    expect(settingsFromEnv({ LINKGW_RECORDS_URL_FILE: join(dir, 'url') }).recordsUrl).toBe('postgres://u:pw@db:5432/x');
    expect(problems({ LINKGW_RECORDS_URL_FILE: join(dir, 'url'), LINKGW_RECORDS_URL: 'postgres://db/x' })).toEqual(['LINKGW_RECORDS_URL and LINKGW_RECORDS_URL_FILE: set one of them, not both']);
    expect(problems({ LINKGW_RECORDS_URL_FILE: join(dir, 'missing') })[0]).toMatch(/^LINKGW_RECORDS_URL_FILE: cannot read .*missing \(ENOENT\)/);
    // Only secrets have a _FILE variant.
    expect(KNOWN_VARIABLES.has('LINKGW_LISTEN_FILE')).toBe(false);
  });

  it('documents every setting from the schema', () => {
    const names = ENV_DOC.map(([k]) => k);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(KNOWN_VARIABLES.has(n)).toBe(true);
    for (const [k, shown, doc] of ENV_DOC) {
      expect(shown, k).not.toBe('');
      expect(doc, k).not.toBe('');
    }
  });
});
describe('keyring settings', () => {
  it('picks the backend from the environment and refuses ambiguous or incomplete combinations', () => {
    expect(settingsFromEnv({}).keyring).toEqual({ backend: 'plain' });
    expect(settingsFromEnv({ LINKGW_KEYRING_PASSPHRASE_FILE: 'pp' }).keyring).toEqual({ backend: 'passphrase', passphrase: { file: resolve('pp') } });
    expect(settingsFromEnv({ LINKGW_PKCS11_MODULE: '/lib/x.so', LINKGW_PKCS11_PIN: '1234' }).keyring).toEqual({
      backend: 'pkcs11',
      module: '/lib/x.so',
      token: 'linkgw',
      pin: { value: '1234' },
    });
    expect(() => settingsFromEnv({ LINKGW_PKCS11_MODULE: '/lib/x.so' })).toThrow(/needs the token PIN/);
    expect(() => settingsFromEnv({ LINKGW_PKCS11_MODULE: '/lib/x.so', LINKGW_PKCS11_PIN: '1', LINKGW_PKCS11_PIN_FILE: 'f' })).toThrow(/set one, not both/);
    expect(() => settingsFromEnv({ LINKGW_PKCS11_PIN: '1234' })).toThrow(/need LINKGW_PKCS11_MODULE/);
    expect(() => settingsFromEnv({ LINKGW_PKCS11_MODULE: '/lib/x.so', LINKGW_PKCS11_PIN: '1', LINKGW_KEYRING_PASSPHRASE: 'p' })).toThrow(/not both/);
  });

  it('keeps the dev CA key directory outside the data directory by default', () => {
    const s = settingsFromEnv({ LINKGW_DATA_DIR: '/srv/linkgw/data' });
    expect(s.devCaDir).toBe('/srv/linkgw/data-dev-ca');
    expect(s.devCaDir.startsWith(s.dataDir + '/')).toBe(false);
  });
});
