/**
 * The PKCS#11 backend against a real SoftHSM2 token of this run's own: a file keyring moved into the token
 * keeps its codes, seals are made inside the token and verify, the sealing key cannot leave it, an HSM-backed
 * data directory holds no key material, a wrong PIN / missing token / missing module stop the start with a
 * clear cause, and rotation works on this backend.
 */
import { status } from '@grpc/grpc-js';
import { verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { deriveKey } from '../../src/core/key-derivation.js';
import { settingsFromEnv, type KeyringSettings } from '../../src/config/settings.js';
import { initHsm, promoteCodeKey, promoteSealKey, retireCodeKey, retireSealKey, rotateCodeKey, rotateSealKey, showKeyring, stageCodeKey, stageSealKey } from '../../src/keys/keyring-admin.js';
import { openKeyring, readKeyringDocument } from '../../src/keys/keyring-file.js';
import { pkcs11, TokenSession } from '../../src/keys/pkcs11-token.js';
import { ensureDevPki, pkiFiles } from '../../src/pki/dev-pki.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { startHarness, statusOf, tempDir } from '../helpers/gateway-harness.js';
import { acceptsDisclosureCode, checkpointSigners, encodings, filesUnder, locationFor } from '../helpers/keyrings.js';
import { until } from '../helpers/wait.js';
import { population } from '../helpers/population.js';
import { softHsm, type SoftHsm, type SoftHsmToken } from '../helpers/softhsm.js';

let hsm: SoftHsm;
let main: SoftHsmToken;
let other: SoftHsmToken;

beforeAll(() => {
  hsm = softHsm();
  // Every token first: SoftHSM reads its token directory when the module is initialised.
  main = hsm.token('linkgw-test');
  other = hsm.token('linkgw-other', '1111-2222');
});
afterAll(() => hsm?.remove());

const pkcs11Settings = (env: Record<string, string>) => settingsFromEnv({ LINKGW_DATA_DIR: tempDir(), ...env }).keyring as Extract<KeyringSettings, { backend: 'pkcs11' }>;
const number = (s: string) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
};

describe('a keyring in a PKCS#11 token (SoftHSM2)', () => {
  it('init-hsm keeps every code; seals are made in the token, verify, and the sealing key cannot leave it', async () => {
    const dataDir = tempDir();
    const plain = await startHarness({ dataDir });
    const before = await plain.client('welfare').issueCode('621498320257');
    await plain.stop();
    const plainText = readFileSync(join(dataDir, 'keyring.json'), 'utf8');
    const plainDoc = readKeyringDocument(join(dataDir, 'keyring.json'));

    const r = await initHsm(join(dataDir, 'keyring.json'), pkcs11Settings(main.env));
    expect(r.created).toBe(false);
    expect(r.description).toMatchObject({ protection: { kind: 'pkcs11', token: main.label }, currentSealingKey: 'seal-2' });
    expect(r.description.sealingKeys['seal-1']).toMatchObject({ state: 'retired', heldIn: 'destroyed' });
    expect(r.description.sealingKeys['seal-2']).toMatchObject({ state: 'current', heldIn: 'token' });
    // No secret of the plain file is left in the wrapped one.
    const wrapped = readFileSync(join(dataDir, 'keyring.json'), 'utf8');
    for (const s of [plainDoc.codeKeys['1']!.secret!, plainDoc.subject, plainDoc.cache, plainDoc.sealingKeys['seal-1']!.privateKey!]) {
      expect(plainText).toContain(s);
      expect(wrapped).not.toContain(s);
    }

    const h = await startHarness({ dataDir, env: main.env });
    try {
      expect(h.gw.keyring.protection).toBe('pkcs11');
      expect(h.gw.keyring.sealSigner.keyId).toBe('seal-2');
      const after = await h.client('welfare').issueCode('621498320257');
      expect(after.code).toBe(before.code);
      await h.client('pension').issueBulk(population(300, 41));
      // Sign the records so far: checkpoints signed with the file key before, and in the token now, all verify.
      await until(async () => (await h.gw.store.latestCheckpoints())[0]?.size === h.gw.writer.size);
      const reports = await verifyStore(h.gw.store, h.gw.keyring.sealPublicKeys);
      expect(reports).toHaveLength(1);
      expect(reports.every((x) => x.problem === null && x.checkpoints > 0)).toBe(true);
      const keyIds = await checkpointSigners(h.gw.store, h.gw.keyring.sealPublicKeys);
      expect([...keyIds].sort()).toEqual(['seal-1', 'seal-2']);
    } finally {
      await h.stop();
    }

    // The private key was generated in the token and can never be read or wrapped out of it.
    const doc = readKeyringDocument(join(dataDir, 'keyring.json'));
    const tokenKeyId = doc.sealingKeys['seal-2']!.tokenKeyId!;
    const t = TokenSession.open({ module: hsm.module, token: main.label, pin: main.pin });
    try {
      const p = pkcs11();
      await t.run((lib, session) => {
        const [key] = t.find([
          { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
          { type: p.CKA_ID, value: Buffer.from(tokenKeyId, 'hex') },
        ]);
        expect(key).toBeDefined();
        const attrs = lib.C_GetAttributeValue(session, key!, [{ type: p.CKA_LOCAL }, { type: p.CKA_NEVER_EXTRACTABLE }, { type: p.CKA_EXTRACTABLE }, { type: p.CKA_SENSITIVE }]);
        expect(attrs.map((a) => (a.value as Buffer)[0])).toEqual([1, 1, 0, 1]);
        expect(() => lib.C_GetAttributeValue(session, key!, [{ type: p.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
        const [kek] = t.find([{ type: p.CKA_ID, value: Buffer.from((doc.protection as { wrappingKeyId: string }).wrappingKeyId, 'hex') }]);
        expect(() => lib.C_WrapKey(session, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, kek!, key!, Buffer.alloc(256))).toThrow(/CKR_KEY_UNEXTRACTABLE|CKR_KEY_NOT_WRAPPABLE/);
      });
    } finally {
      await t.close();
    }
  });

  it('leaves no key material in the data directory of an HSM-backed gateway (every file scanned)', async () => {
    // TLS material is mounted from elsewhere, as in production: the data directory is the gateway's own state.
    const pkiDir = tempDir('linkgw-pki-');
    const agencies = ['pension', 'tax', 'employment', 'welfare', 'disclosure'];
    await ensureDevPki(pkiDir, new Map(agencies.map((a) => [a, a])));
    const f = pkiFiles(pkiDir);
    const dataDir = tempDir();
    const created = await initHsm(join(dataDir, 'keyring.json'), pkcs11Settings(main.env));
    expect(created.created).toBe(true);
    const h = await startHarness({
      dataDir,
      env: { ...main.env, LINKGW_TLS_CA: f.caCert, LINKGW_TLS_CERT: f.gatewayCert, LINKGW_TLS_KEY: f.gatewayKey, LINKGW_SIMULATE: '0' },
    });
    const needles: Buffer[] = [];
    try {
      const clients = agencies.map((a) => new AgencyClient({ address: h.gw.address, agency: a, files: { ca: f.caCert, cert: f.agencyCert(a), key: f.agencyKey(a) } }));
      try {
        for (const c of clients) await c.issueCode('621498320257');
        await clients[0]!.issueBulk(population(500, 7));
        const code = (await clients[4]!.issueCode('621498320257')).code;
        expect((await clients[4]!.listRecords({ code })).length).toBeGreaterThan(0);
      } finally {
        for (const c of clients) c.close();
      }
      const k = h.gw.keyring;
      const secrets: Uint8Array[] = [k.subjectSecret, k.cacheSecret, deriveKey(k.subjectSecret, 'record-subject')];
      for (const [, m] of k.masters) secrets.push(m, ...agencies.map((a) => deriveKey(m, `agency-code:${a}`)));
      for (const s of secrets) needles.push(...encodings(s));
      needles.push(Buffer.from(main.pin));
    } finally {
      await h.stop();
    }
    const files = filesUnder(dataDir);
    expect(files.map((x) => x.path.slice(dataDir.length + 1)).sort()).toEqual(expect.arrayContaining(['keyring.json', 'records.sqlite']));
    const pkcs8Ed25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
    for (const { path, bytes } of files) {
      for (const n of needles) expect(bytes.includes(n), `${path} holds key material`).toBe(false);
      expect(bytes.includes(pkcs8Ed25519), `${path} holds an Ed25519 private key`).toBe(false);
      expect(bytes.includes(Buffer.from('PRIVATE KEY')), `${path} holds a PEM private key`).toBe(false);
    }
  });

  it('stops the start with the cause named: wrong PIN, missing token, missing module, no HSM settings, another token', async () => {
    const dataDir = tempDir();
    await initHsm(join(dataDir, 'keyring.json'), pkcs11Settings(main.env));
    const fails = (env: Record<string, string>) => startHarness({ dataDir, env }).then(
      async (h) => {
        await h.stop();
        throw new Error('the gateway started');
      },
      (e: unknown) => e as { problem: string; message: string },
    );
    const wrongPin = await fails({ ...main.env, LINKGW_PKCS11_PIN: 'not-the-pin' });
    expect(wrongPin).toMatchObject({ problem: 'wrong-pin' });
    expect(wrongPin.message).toMatch(/"linkgw-test" refused the PIN: wrong PIN \(CKR_PIN_INCORRECT/);
    expect(wrongPin.message).not.toContain('not-the-pin');

    const noToken = await fails({ ...main.env, LINKGW_PKCS11_TOKEN: 'no-such-token' });
    expect(noToken).toMatchObject({ problem: 'token-missing' });
    expect(noToken.message).toMatch(/no PKCS#11 token labelled "no-such-token".*"linkgw-test"/);

    const noModule = await fails({ ...main.env, LINKGW_PKCS11_MODULE: '/nonexistent/libnothing.so' });
    expect(noModule).toMatchObject({ problem: 'pkcs11-module' });
    expect(noModule.message).toMatch(/cannot load the PKCS#11 module \/nonexistent\/libnothing\.so/);

    const noSettings = await fails({});
    expect(noSettings).toMatchObject({ problem: 'settings' });
    expect(noSettings.message).toMatch(/is a pkcs11 keyring.*LINKGW_PKCS11_MODULE/);

    const otherToken = await fails(other.env);
    expect(otherToken).toMatchObject({ problem: 'token-key-missing' });

    // With HSM settings and no keyring, nothing is made implicitly (a mistyped data directory must not mean new codes).
    const empty = await startHarness({ env: main.env }).then(
      async (h) => {
        await h.stop();
        throw new Error('the gateway started');
      },
      (e: unknown) => e as { problem: string; message: string },
    );
    expect(empty).toMatchObject({ problem: 'missing' });
    expect(empty.message).toMatch(/no keyring at .*linkgw keys init-hsm/);

    const pinFile = join(tempDir(), 'pin');
    writeFileSync(pinFile, `${main.pin}\n`, { mode: 0o600 });
    const { LINKGW_PKCS11_PIN: _pin, ...withoutPin } = main.env;
    const h = await startHarness({ dataDir, env: { ...withoutPin, LINKGW_PKCS11_PIN_FILE: pinFile } });
    await h.stop();
  });

  it('signs concurrently through one session, and reconnects once when the token drops it', async () => {
    const dataDir = tempDir();
    await initHsm(join(dataDir, 'keyring.json'), pkcs11Settings(main.env));
    const { keyring } = await openKeyring(locationFor(dataDir, main.env));
    try {
      const signer = keyring.sealSigner;
      const messages = Array.from({ length: 20 }, (_, i) => Buffer.from(`message ${i}`));
      const signatures = await Promise.all(messages.map((m) => signer.sign(m)));
      signatures.forEach((sig, i) => expect(verify(null, messages[i]!, signer.publicKey, sig)).toBe(true));

      // Something else closes every session of this process on the token (as a restarted network HSM would).
      const t = TokenSession.open({ module: hsm.module, token: main.label, pin: main.pin });
      await t.run((lib, session) => lib.C_CloseAllSessions(lib.C_GetSessionInfo(session).slotID));
      await t.close();
      const m = Buffer.from('after the session was lost');
      expect(verify(null, m, signer.publicKey, await signer.sign(m))).toBe(true);
    } finally {
      await keyring.close();
    }
    await expect(keyring.sealSigner.sign(Buffer.from('closed'))).rejects.toThrow(/session .* is closed/);
  });

  it('rotates, stages, promotes and retires code and sealing keys in the token', async () => {
    const dataDir = tempDir();
    const loc = locationFor(dataDir, main.env);
    await initHsm(loc.path, pkcs11Settings(main.env));
    const person = '621498320257';
    let h = await startHarness({ dataDir, env: main.env });
    const v1 = (await h.client('disclosure').issueCode(person)).code;
    await h.stop();

    expect(await rotateCodeKey(loc)).toBe(2);
    expect(await rotateSealKey(loc)).toBe('seal-2');
    expect(await stageCodeKey(loc)).toBe(3);
    expect((await stageSealKey(loc)).id).toBe('seal-3');
    const shown = showKeyring(loc.path);
    expect(shown).toMatchObject({ codeKeyVersions: [1, 2, 3], currentCodeKeyVersion: 2, currentSealingKey: 'seal-2' });
    expect(Object.fromEntries(Object.entries(shown.codeKeys).map(([v, k]) => [v, k.state]))).toEqual({ 1: 'previous', 2: 'current', 3: 'staged' });
    expect(Object.fromEntries(Object.entries(shown.sealingKeys).map(([v, k]) => [v, [k.state, k.heldIn]]))).toEqual({
      'seal-1': ['previous', 'token'],
      'seal-2': ['current', 'token'],
      'seal-3': ['staged', 'token'],
    });

    h = await startHarness({ dataDir, env: main.env });
    let v2: string;
    let v3: string;
    try {
      expect(h.gw.keyring.sealSigner.keyId).toBe('seal-2');
      expect([...h.gw.keyring.sealPublicKeys.keys()].sort()).toEqual(['seal-1', 'seal-2', 'seal-3']);
      v2 = (await h.client('disclosure').issueCode(person)).code;
      expect(new AgencyCodec(h.gw.keyring).decode('disclosure', v2)).toMatchObject({ ok: true, version: 2 });
      // A code under the staged version (as a promoted replica would issue it) is accepted already.
      v3 = new AgencyCodec({ current: 3, masters: h.gw.keyring.masters }).encode('disclosure', number(person));
      for (const c of [v1, v2, v3]) expect(await acceptsDisclosureCode(h, c)).toBe(true);
    } finally {
      await h.stop();
    }

    expect(await promoteCodeKey(loc)).toEqual({ current: 3, previous: 2 });
    expect(await promoteSealKey(loc)).toEqual({ current: 'seal-3', previous: 'seal-2' });
    h = await startHarness({ dataDir, env: main.env });
    try {
      expect(h.gw.keyring.sealSigner.keyId).toBe('seal-3');
      expect((await h.client('disclosure').issueCode(person)).code).toBe(v3);
      for (const c of [v1, v2]) expect(await acceptsDisclosureCode(h, c)).toBe(true);
      // One log for the replica's life, resumed after each restart, whichever key signed its checkpoints.
      const reports = await verifyStore(h.gw.store, h.gw.keyring.sealPublicKeys);
      expect(reports.length).toBe(1);
      expect(reports.every((x) => x.problem === null)).toBe(true);
    } finally {
      await h.stop();
    }

    // Withdrawing: version 1 stops decoding; seal-1's private key is destroyed in the token.
    const seal1 = readKeyringDocument(loc.path).sealingKeys['seal-1']!.tokenKeyId!;
    await retireCodeKey(loc, 1);
    await retireSealKey(loc, 'seal-1');
    await expect(retireCodeKey(loc, 3)).rejects.toThrow(/is current/);
    const doc = readKeyringDocument(loc.path);
    expect(doc.codeKeys['1']).toMatchObject({ state: 'retired' });
    expect(doc.codeKeys['1']!.secret).toBeUndefined();
    const t = TokenSession.open({ module: hsm.module, token: main.label, pin: main.pin });
    try {
      expect(await t.run(() => t.find([{ type: pkcs11().CKA_ID, value: Buffer.from(seal1, 'hex') }]))).toHaveLength(0);
    } finally {
      await t.close();
    }
    h = await startHarness({ dataDir, env: main.env });
    try {
      expect(await acceptsDisclosureCode(h, v1)).toBe(false);
      expect(await acceptsDisclosureCode(h, v2)).toBe(true);
      const s = await statusOf(h.client('disclosure').listRecords({ code: v1 }));
      expect(s.code).toBe(status.INVALID_ARGUMENT);
      // seal-1's public key stays: the chain it sealed still verifies.
      expect((await verifyStore(h.gw.store, h.gw.keyring.sealPublicKeys)).every((x) => x.problem === null)).toBe(true);
    } finally {
      await h.stop();
    }
  });
});
