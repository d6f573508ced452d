import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoopbackListen, settingsFromEnv } from '../../src/config/settings.js';

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
