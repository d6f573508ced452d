/**
 * Key rotation as an operator does it: `linkgw keys rotate` between two runs of the gateway. Codes issued
 * before keep working; new codes are issued under the new version; `keys show` prints no secret.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { KeyringSettings } from '../../src/config/settings.js';
import { initHsm } from '../../src/keys/keyring-admin.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { locationFor } from '../helpers/keyrings.js';
import { softHsm, type SoftHsm } from '../helpers/softhsm.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const run = promisify(execFile);

describe('linkgw keys', () => {
  it('rotates the code key: old codes still convert, new codes differ, no secret is printed', async () => {
    const dataDir = tempDir();
    const env = { ...process.env, LINKGW_DATA_DIR: dataDir };
    const first = await startHarness({ dataDir });
    const before = await first.client('welfare').issueCode('621498320257');
    await first.stop();

    const rotated = JSON.parse((await run(process.execPath, [BIN, 'keys', 'rotate', '--json'], { env })).stdout) as { currentCodeKeyVersion: number };
    expect(rotated.currentCodeKeyVersion).toBe(2);
    const shown = (await run(process.execPath, [BIN, 'keys', 'show', '--json'], { env })).stdout;
    expect(JSON.parse(shown)).toMatchObject({ codeKeyVersions: [1, 2], currentCodeKeyVersion: 2 });
    const keyring = JSON.parse(readFileSync(join(dataDir, 'keyring.json'), 'utf8')) as {
      codeKeys: Record<string, { secret: string }>;
      subject: string;
      cache: string;
      sealingKeys: Record<string, { privateKey: string }>;
    };
    const secrets = [...Object.values(keyring.codeKeys).map((k) => k.secret), keyring.subject, keyring.cache, ...Object.values(keyring.sealingKeys).map((k) => k.privateKey)];
    expect(secrets).toHaveLength(5);
    for (const secret of secrets) expect(shown).not.toContain(secret);

    const second = await startHarness({ dataDir });
    try {
      const after = await second.client('welfare').issueCode('621498320257');
      expect(after.code).not.toBe(before.code);
      // The code from before the rotation still names the person: the query gets past the code check.
      for (const code of [before.code, after.code]) {
        const r = await second
          .client('welfare')
          .queryInformation({ code, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' })
          .then(
            (x) => x.legalBasisRow,
            (e: { code: number }) => e.code,
          );
        expect(['B2-002', 5]).toContain(r); // provided, or NOT_FOUND if the simulated tax office does not know the person
      }
    } finally {
      await second.stop();
    }
  });

  describe('with the keyring in a PKCS#11 token', () => {
    let hsm: SoftHsm | undefined;
    afterAll(() => hsm?.remove());

    it('rotates through the same commands, and records verify needs no PIN', async () => {
      hsm = softHsm();
      const token = hsm.token('linkgw-cli');
      const dataDir = tempDir();
      const loc = locationFor(dataDir, token.env);
      await initHsm(loc.path, loc.unlock as Extract<KeyringSettings, { backend: 'pkcs11' }>);
      const env = { ...process.env, LINKGW_DATA_DIR: dataDir, ...token.env };
      const rotated = JSON.parse((await run(process.execPath, [BIN, 'keys', 'rotate-seal', '--json'], { env })).stdout) as { currentSealingKey: string };
      expect(rotated.currentSealingKey).toBe('seal-2');
      expect(JSON.parse((await run(process.execPath, [BIN, 'keys', 'rotate', '--json'], { env })).stdout)).toMatchObject({ currentCodeKeyVersion: 2 });
      const h = await startHarness({ dataDir, env: token.env });
      try {
        expect(h.gw.keyring.sealSigner.keyId).toBe('seal-2');
        await h.client('welfare').issueCode('621498320257');
      } finally {
        await h.stop();
      }
      // Showing and verifying use public keys only: no PKCS#11 settings, no PIN.
      const plainEnv = { ...process.env, LINKGW_DATA_DIR: dataDir };
      const shown = JSON.parse((await run(process.execPath, [BIN, 'keys', 'show', '--json'], { env: plainEnv })).stdout) as { sealingKeys: Record<string, { heldIn: string }> };
      expect(shown.sealingKeys['seal-2']).toMatchObject({ heldIn: 'token' });
      const verified = (await run(process.execPath, [BIN, 'records', 'verify', '--json'], { env: plainEnv })).stdout.trim().split('\n');
      expect(JSON.parse(verified.at(-1)!)).toMatchObject({ logs: 1, tampered: 0 });
      // A change without the PIN is refused, naming what is missing.
      const refused = await run(process.execPath, [BIN, 'keys', 'rotate'], { env: plainEnv }).then(
        () => '',
        (e: { stderr: string }) => e.stderr,
      );
      expect(refused).toMatch(/is a pkcs11 keyring.*LINKGW_PKCS11_MODULE/);
    });
  });
});
