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
