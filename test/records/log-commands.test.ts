/**
 * The command logic the CLI calls: the checkpoints it prints are what `records verify --against` reads back,
 * the note verifier key `keys show` prints opens them in Go's note package, and a store of the hash-chain era
 * is refused with a clear message instead of being misread.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { noteVerifierFromKey } from '../../src/core/signed-note.js';
import { loadOrCreateKeyring } from '../../src/keys/keyring-file.js';
import { silentLogger } from '../../src/log/logger.js';
import { describeLogKeys, latestCheckpointLines, verifyRecordsCommand } from '../../src/records/log-commands.js';
import { RecordWriter } from '../../src/records/record-writer.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { issuanceDraft } from '../helpers/drafts.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { goVerify } from '../interop/go-verifier.js';

const stores: SqliteRecordStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

describe('the log commands', () => {
  it('print checkpoints that verify --against reads back, and the key that opens them', async () => {
    const dir = tempDir();
    const { keyring } = loadOrCreateKeyring(join(dir, 'keyring.json'));
    const store = await SqliteRecordStore.open(join(dir, 'records.sqlite'));
    stores.push(store);
    const w = new RecordWriter({ store, signer: keyring.sealSigner, log: silentLogger, logId: 'cli-a', origin: 'gov.example/linkgw/cli-a' });
    await w.appendAll([issuanceDraft(), issuanceDraft(), issuanceDraft()]);
    await w.close();

    const lines = await latestCheckpointLines(store);
    expect(lines).toEqual([{ origin: 'gov.example/linkgw/cli-a', size: 3, signedNote: expect.stringMatching(/^gov\.example\/linkgw\/cli-a\n3\n/) }]);
    const file = join(dir, 'kept-checkpoints.jsonl');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    for (const quick of [false, true]) {
      const r = await verifyRecordsCommand(store, keyring.sealPublicKeys, { againstFile: file, quick });
      expect(r.summary, quick ? 'quick' : 'full').toMatchObject({ logs: 1, tampered: 0 });
    }
    await expect(verifyRecordsCommand(store, keyring.sealPublicKeys, { quick: true })).rejects.toThrow(/--against/);

    const keys = describeLogKeys(keyring.sealPublicKeys, keyring.sealSigner.keyId, 'gov.example/linkgw/cli-a', 'cli-a');
    expect(keys).toMatchObject({ logOrigin: 'gov.example/linkgw/cli-a', witnessLogsEntry: expect.stringMatching(/^gov\.example\/linkgw\/\*=/) });
    const vkey = keys.currentNoteVerifierKey as string;
    expect(openCheckpoint(lines[0]!.signedNote, [noteVerifierFromKey(vkey)]).checkpoint.size).toBe(3);
    expect((await goVerify({ logs: [vkey], checkpoints: [lines[0]!.signedNote] })).checkpoints).toEqual([{ ok: true, origin: 'gov.example/linkgw/cli-a', size: 3 }]);
  });

  it('refuse a record store of the hash-chain era', async () => {
    const path = join(tempDir(), 'records.sqlite');
    const db = new Database(path);
    db.exec('CREATE TABLE access_records (chain_id TEXT, seq BIGINT, hash TEXT)');
    db.close();
    await expect(SqliteRecordStore.open(path)).rejects.toThrow(/hash-chained records of an earlier linkgw/);
  });
});
