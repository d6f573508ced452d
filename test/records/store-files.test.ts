/**
 * The SQLite record store's files are mode 0600, as the keyring is (issue 21 item 7): they hold who asked
 * about whom. New stores are made so, and a store made earlier with 0644 is narrowed when it is opened.
 */
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyObjectSigner } from '../../src/keys/signer.js';
import { silentLogger } from '../../src/log/logger.js';
import { openRecordStore } from '../../src/records/open-store.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { recordDraft } from '../helpers/record-stores.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const signer = new KeyObjectSigner('seal-1', privateKey, publicKey);
const mode = (f: string) => statSync(f).mode & 0o777;

describe('SQLite record store files', () => {
  it('are mode 0600: the database, its write-ahead log and shared memory; an older 0644 store is narrowed', async () => {
    const path = join(tempDir(), 'records.sqlite');
    const store = await openRecordStore({ sqlitePath: path });
    const writer = new RecordWriter({ store, signer, log: silentLogger, logId: 'files', origin: 'linkgw/records/files' });
    await writer.append(recordDraft(Date.now()));
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      expect(existsSync(f), f).toBe(true);
      expect(mode(f), f).toBe(0o600);
    }
    await writer.close();
    await store.close();

    chmodSync(path, 0o644);
    const again = await openRecordStore({ sqlitePath: path });
    try {
      expect(mode(path)).toBe(0o600);
      expect((await again.logs()).map((l) => l.size)).toEqual([1]);
    } finally {
      await again.close();
    }
  });
});
