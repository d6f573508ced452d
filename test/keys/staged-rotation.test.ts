/**
 * Two-phase rotation during a rolling update, as two replicas see it: one still runs the staged keyring
 * (new code key and sealing key known, not used), the other already the promoted one. Each decodes the
 * other's codes, and the staged replica's keyring verifies the promoted replica's seals. Without staging, the
 * old keyring refuses the promoted replica's code. On the plain file and on the PKCS#11 backend.
 */
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import type { KeyringSettings } from '../../src/config/settings.js';
import { initHsm, promoteCodeKey, promoteSealKey, stageCodeKey, stageSealKey } from '../../src/keys/keyring-admin.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { acceptsDisclosureCode, checkpointSigners, locationFor } from '../helpers/keyrings.js';
import { softHsm, type SoftHsm } from '../helpers/softhsm.js';

const PERSON = '621498320257';

describe.each(['file', 'pkcs11'] as const)('staged rotation with a %s keyring', (backend) => {
  let hsm: SoftHsm | undefined;
  let env: Record<string, string> = {};
  beforeAll(() => {
    if (backend !== 'pkcs11') return;
    hsm = softHsm();
    env = hsm.token('linkgw-rolling').env;
  });
  afterAll(() => hsm?.remove());

  it('a staged replica and a promoted one decode each other\'s codes and verify each other\'s seals', async () => {
    const dirA = tempDir();
    await (await startHarness({ dataDir: dirA })).stop();
    const locA = locationFor(dirA, env);
    if (backend === 'pkcs11') await initHsm(locA.path, locA.unlock as Extract<KeyringSettings, { backend: 'pkcs11' }>);

    // Phase 1, stage (then every replica is rolled onto the staged keyring).
    expect(await stageCodeKey(locA)).toBe(2);
    const staged = await stageSealKey(locA);
    // Phase 2, promote, rolled out one replica at a time: B already has it, A not yet.
    const dirB = tempDir();
    mkdirSync(dirB, { recursive: true });
    cpSync(locA.path, join(dirB, 'keyring.json'));
    cpSync(join(dirA, 'pki'), join(dirB, 'pki'), { recursive: true });
    const locB = locationFor(dirB, env);
    expect(await promoteCodeKey(locB)).toEqual({ current: 2, previous: 1 });
    expect((await promoteSealKey(locB)).current).toBe(staged.id);

    let a: Harness | undefined;
    let b: Harness | undefined;
    try {
      a = await startHarness({ dataDir: dirA, env });
      b = await startHarness({ dataDir: dirB, env });
      expect(a.gw.keyring.protection).toBe(backend === 'pkcs11' ? 'pkcs11' : 'plain');
      const fromA = (await a.client('disclosure').issueCode(PERSON)).code;
      const fromB = (await b.client('disclosure').issueCode(PERSON)).code;
      expect(new AgencyCodec(a.gw.keyring).decode('disclosure', fromA)).toMatchObject({ ok: true, version: 1 });
      expect(new AgencyCodec(b.gw.keyring).decode('disclosure', fromB)).toMatchObject({ ok: true, version: 2 });
      expect(fromA).not.toBe(fromB);

      expect(await acceptsDisclosureCode(a, fromB)).toBe(true);
      expect(await acceptsDisclosureCode(b, fromA)).toBe(true);
      // Without the staging phase, a replica on the old keyring (version 1 only) refuses the promoted one's code.
      const old = new AgencyCodec({ current: 1, masters: new Map([[1, a.gw.keyring.masters.get(1)!]]) });
      expect(old.decode('disclosure', fromB)).toEqual({ ok: false, problem: 'unknown-key-version' });

      // B seals with the promoted key; A's keyring, still staged, already holds its public key.
      expect(a.gw.keyring.sealSigner.keyId).not.toBe(staged.id);
      expect(b.gw.keyring.sealSigner.keyId).toBe(staged.id);
      const reports = await verifyStore(b.gw.store, a.gw.keyring.sealPublicKeys);
      expect(reports.length).toBe(1);
      expect(reports[0]).toMatchObject({ problem: null });
      expect(await checkpointSigners(b.gw.store, a.gw.keyring.sealPublicKeys)).toEqual(new Set([staged.id]));
    } finally {
      await b?.stop();
      await a?.stop();
    }
  });
});
