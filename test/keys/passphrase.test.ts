/**
 * The passphrase-wrapped keyring: a copy of the file alone is useless, the gateway starts with the passphrase
 * and computes the same codes as before wrapping, a wrong or missing passphrase stops the start with its
 * cause, and rotation works under the passphrase.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { promoteCodeKey, promoteSealKey, rotateCodeKey, showKeyring, stageCodeKey, stageSealKey, wrapWithPassphrase } from '../../src/keys/keyring-admin.js';
import { readKeyringDocument } from '../../src/keys/keyring-file.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { acceptsDisclosureCode, locationFor } from '../helpers/keyrings.js';

const PASSPHRASE = 'correct horse battery staple';

function passphraseFile(text: string): string {
  const f = join(tempDir(), 'passphrase');
  writeFileSync(f, `${text}\n`, { mode: 0o600 });
  return f;
}

async function startFails(dataDir: string, env: Record<string, string>): Promise<{ problem: string; message: string }> {
  return startHarness({ dataDir, env }).then(
    async (h) => {
      await h.stop();
      throw new Error('the gateway started');
    },
    (e: unknown) => e as { problem: string; message: string },
  );
}

describe('a passphrase-wrapped keyring', () => {
  it('hides every secret of the file, starts with the passphrase and yields the same codes and seals', async () => {
    const dataDir = tempDir();
    const plain = await startHarness({ dataDir });
    const before = [await plain.client('welfare').issueCode('621498320257'), await plain.client('tax').issueCode('621498320257')].map((r) => r.code);
    await plain.stop();
    const doc = readKeyringDocument(join(dataDir, 'keyring.json'));
    const secrets = [doc.codeKeys['1']!.secret!, doc.subject, doc.cache, doc.sealingKeys['seal-1']!.privateKey!];

    const file = passphraseFile(PASSPHRASE);
    const r = await wrapWithPassphrase(join(dataDir, 'keyring.json'), { file });
    expect(r).toMatchObject({ created: false, description: { protection: { kind: 'passphrase' }, currentCodeKeyVersion: 1, currentSealingKey: 'seal-1' } });
    const wrapped = readFileSync(join(dataDir, 'keyring.json'), 'utf8');
    for (const s of secrets) {
      expect(wrapped).not.toContain(s);
      expect(wrapped).not.toContain(Buffer.from(s, 'base64').toString('hex'));
    }
    expect(wrapped).not.toContain(PASSPHRASE);

    const h = await startHarness({ dataDir, env: { LINKGW_KEYRING_PASSPHRASE_FILE: file } });
    try {
      expect(h.gw.keyring.protection).toBe('passphrase');
      const after = [await h.client('welfare').issueCode('621498320257'), await h.client('tax').issueCode('621498320257')].map((x) => x.code);
      expect(after).toEqual(before);
      // The same sealing key: the replica's log, resumed after the restart, verifies with it as before.
      expect(h.gw.keyring.sealSigner.keyId).toBe('seal-1');
      const reports = await verifyStore(h.gw.store, h.gw.keyring.sealPublicKeys);
      expect(reports).toHaveLength(1);
      expect(reports.every((x) => x.problem === null)).toBe(true);
    } finally {
      await h.stop();
    }

    // A new passphrase: the old one unlocks, the new one protects; codes stay.
    await wrapWithPassphrase(join(dataDir, 'keyring.json'), { value: 'another long passphrase' }, { backend: 'passphrase', passphrase: { file } });
    const again = await startHarness({ dataDir, env: { LINKGW_KEYRING_PASSPHRASE: 'another long passphrase' } });
    try {
      expect((await again.client('welfare').issueCode('621498320257')).code).toBe(before[0]);
    } finally {
      await again.stop();
    }
  });

  it('stops the start on a wrong or missing passphrase, and refuses a short one', async () => {
    const dataDir = tempDir();
    const created = await wrapWithPassphrase(join(dataDir, 'keyring.json'), { value: PASSPHRASE });
    expect(created.created).toBe(true);

    const wrong = await startFails(dataDir, { LINKGW_KEYRING_PASSPHRASE_FILE: passphraseFile('not the passphrase at all') });
    expect(wrong).toMatchObject({ problem: 'wrong-passphrase' });
    expect(wrong.message).toMatch(/passphrase is wrong/);
    const missing = await startFails(dataDir, {});
    expect(missing).toMatchObject({ problem: 'settings' });
    expect(missing.message).toMatch(/is a passphrase keyring.*LINKGW_KEYRING_PASSPHRASE_FILE/);
    const noFile = await startFails(dataDir, { LINKGW_KEYRING_PASSPHRASE_FILE: join(tempDir(), 'absent') });
    expect(noFile).toMatchObject({ problem: 'settings' });
    expect(noFile.message).toMatch(/cannot read the keyring passphrase.*ENOENT/);

    // A passphrase next to a plain keyring is a mistake, not a silent fallback.
    const plainDir = tempDir();
    await (await startHarness({ dataDir: plainDir })).stop();
    expect(await startFails(plainDir, { LINKGW_KEYRING_PASSPHRASE: PASSPHRASE })).toMatchObject({ problem: 'settings' });
    await expect(wrapWithPassphrase(join(tempDir(), 'keyring.json'), { value: 'too short' })).rejects.toThrow(/at least 12 characters/);
  });

  it('rotates and stages under the passphrase; a wrong passphrase changes nothing', async () => {
    const dataDir = tempDir();
    const env = { LINKGW_KEYRING_PASSPHRASE: PASSPHRASE };
    const loc = locationFor(dataDir, env);
    await wrapWithPassphrase(loc.path, { value: PASSPHRASE });
    const before = readFileSync(loc.path, 'utf8');
    await expect(rotateCodeKey(locationFor(dataDir, { LINKGW_KEYRING_PASSPHRASE: 'a wrong passphrase' }))).rejects.toMatchObject({ problem: 'wrong-passphrase' });
    expect(readFileSync(loc.path, 'utf8')).toBe(before);

    expect(await rotateCodeKey(loc)).toBe(2);
    expect(await stageCodeKey(loc)).toBe(3);
    expect((await stageSealKey(loc)).id).toBe('seal-2');
    expect(showKeyring(loc.path)).toMatchObject({ codeKeyVersions: [1, 2, 3], currentCodeKeyVersion: 2, currentSealingKey: 'seal-1' });
    let h = await startHarness({ dataDir, env });
    let v2: string;
    try {
      v2 = (await h.client('disclosure').issueCode('621498320257')).code;
      expect(new AgencyCodec(h.gw.keyring).decode('disclosure', v2)).toMatchObject({ ok: true, version: 2 });
    } finally {
      await h.stop();
    }
    await promoteCodeKey(loc);
    await promoteSealKey(loc);
    h = await startHarness({ dataDir, env });
    try {
      expect(h.gw.keyring.sealSigner.keyId).toBe('seal-2');
      const v3 = (await h.client('disclosure').issueCode('621498320257')).code;
      expect(new AgencyCodec(h.gw.keyring).decode('disclosure', v3)).toMatchObject({ ok: true, version: 3 });
      expect(await acceptsDisclosureCode(h, v2)).toBe(true);
      expect((await verifyStore(h.gw.store, h.gw.keyring.sealPublicKeys)).every((x) => x.problem === null)).toBe(true);
    } finally {
      await h.stop();
    }
  });
});
