/** The transparency log's settings: the replica's log name, the checkpoint interval, witnesses, `linkgw witness`. */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { settingsFromEnv, witnessSettingsFromEnv } from '../../src/config/settings.js';

describe('log settings', () => {
  it('name the log after the replica, by default the host', () => {
    const s = settingsFromEnv({});
    expect(s.replicaId).toBe(hostname());
    expect(s.logOrigin).toBe(`linkgw/records/${hostname()}`);
    expect(s.checkpointIntervalMs).toBe(1000);
    expect(s.witnesses).toEqual([]);
    const t = settingsFromEnv({ LINKGW_REPLICA_ID: 'gw-0', LINKGW_LOG_ORIGIN_PREFIX: 'records.example.go.jp/linkgw/', LINKGW_CHECKPOINT_INTERVAL_MS: '250' });
    expect([t.logOrigin, t.checkpointIntervalMs]).toEqual(['records.example.go.jp/linkgw/gw-0', 250]);
  });

  it('refuse names that cannot be a note key name or a lock file, and malformed witnesses', () => {
    for (const id of ['a b', 'a/b', 'a+b', '-x', 'x'.repeat(64)]) expect(() => settingsFromEnv({ LINKGW_REPLICA_ID: id }), id).toThrow(/LINKGW_REPLICA_ID/);
    expect(() => settingsFromEnv({ LINKGW_LOG_ORIGIN_PREFIX: 'a b' })).toThrow(/LINKGW_LOG_ORIGIN_PREFIX/);
    expect(() => settingsFromEnv({ LINKGW_CHECKPOINT_INTERVAL_MS: '0' })).toThrow(/LINKGW_CHECKPOINT_INTERVAL_MS/);
    expect(() => settingsFromEnv({ LINKGW_WITNESSES: 'w+00000000+AAAA' })).toThrow(/LINKGW_WITNESSES/);
    expect(settingsFromEnv({ LINKGW_WITNESSES: 'w1+0a0b0c0d+BKEY=http://127.0.0.1:7380/, w2+01020304+BKEY=https://w.example/p' }).witnesses).toEqual([
      { vkey: 'w1+0a0b0c0d+BKEY', url: 'http://127.0.0.1:7380' },
      { vkey: 'w2+01020304+BKEY', url: 'https://w.example/p' },
    ]);
  });

  it('give linkgw witness its directory, name and logs', () => {
    expect(() => witnessSettingsFromEnv({})).toThrow(/LINKGW_WITNESS_LOGS/);
    const w = witnessSettingsFromEnv({ LINKGW_DATA_DIR: '/tmp/d', LINKGW_WITNESS_LOGS: 'linkgw/records/*=KEY, other+01020304+K' });
    expect(w).toMatchObject({ listen: '127.0.0.1:7380', dir: '/tmp/d/witness', name: `linkgw-witness/${hostname()}`, logs: ['linkgw/records/*=KEY', 'other+01020304+K'] });
    expect(() => witnessSettingsFromEnv({ LINKGW_WITNESS_LOGS: 'x', LINKGW_WITNESS_NAME: 'a b' })).toThrow(/LINKGW_WITNESS_NAME/);
  });
});
