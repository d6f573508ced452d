/**
 * Key rotation as an operator does it: `linkgw keys rotate` between two runs of the gateway. Codes issued
 * before keep working; new codes are issued under the new version; `keys show` prints no secret.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';

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
    const keyring = JSON.parse(readFileSync(join(dataDir, 'keyring.json'), 'utf8')) as { masters: Record<string, string>; subject: string };
    for (const secret of [...Object.values(keyring.masters), keyring.subject]) expect(shown).not.toContain(secret);

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
});
