/** The key lifecycle on a keyring document: stage, promote, rotate, retire, and what a v1 file becomes. */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeDocument, parseKeyringDocument, serializeKeyringDocument, type KeyringDocument } from '../../src/keys/keyring-document.js';
import { freshPlainDocument } from '../../src/keys/keyring-file.js';
import * as states from '../../src/keys/key-states.js';

const secret = (n: number) => Buffer.alloc(32, n).toString('base64');
const sealKey = () => ({ publicKey: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey: 'x' });
const codeStates = (d: KeyringDocument) => Object.fromEntries(Object.entries(d.codeKeys).map(([v, k]) => [v, k.state]));

describe('key states', () => {
  it('stage → promote → retire for code keys; versions are never reused; the current key cannot be retired', () => {
    const d = freshPlainDocument();
    expect(states.addCodeKey(d, secret(2), 'staged')).toBe(2);
    expect(codeStates(d)).toEqual({ 1: 'current', 2: 'staged' });
    expect(describeDocument(d)).toMatchObject({ codeKeyVersions: [1, 2], currentCodeKeyVersion: 1 });
    expect(states.addCodeKey(d, secret(3), 'staged')).toBe(3);
    // The newest staged version is promoted; an older staged one stays staged.
    expect(states.promoteCodeKey(d)).toEqual({ current: 3, previous: 1 });
    expect(codeStates(d)).toEqual({ 1: 'previous', 2: 'staged', 3: 'current' });
    expect(() => states.retireCodeKey(d, 3)).toThrow(/is current/);
    states.retireCodeKey(d, 1);
    expect(d.codeKeys['1']).toMatchObject({ state: 'retired', retiredAt: expect.any(String) });
    expect(d.codeKeys['1']!.secret).toBeUndefined();
    expect(() => states.retireCodeKey(d, 1)).toThrow(/already retired/);
    expect(describeDocument(d).codeKeyVersions).toEqual([2, 3]);
    // A rotation after a retirement takes a new number: a code names its key by version.
    expect(states.addCodeKey(d, secret(4), 'current')).toBe(4);
    expect(codeStates(d)).toEqual({ 1: 'retired', 2: 'staged', 3: 'previous', 4: 'current' });
    expect(() => states.promoteCodeKey(freshPlainDocument())).toThrow(/no staged code key/);
    // The document survives a round trip and keeps its invariants.
    expect(parseKeyringDocument(serializeKeyringDocument(d), 'test')).toEqual(d);
  });

  it('stops at 255 code key versions', () => {
    const d = freshPlainDocument();
    for (let v = 2; v <= 255; v++) states.addCodeKey(d, secret(v % 256), 'current');
    expect(() => states.addCodeKey(d, secret(0), 'staged')).toThrow(/255 code key versions/);
  });

  it('stage → promote → retire for sealing keys; a retired key keeps its public key and loses its private key', () => {
    const d = freshPlainDocument();
    states.addSealKey(d, states.nextSealKeyId(d), sealKey(), 'staged');
    expect(describeDocument(d)).toMatchObject({ currentSealingKey: 'seal-1', sealingKeys: { 'seal-2': { state: 'staged', heldIn: 'file' } } });
    expect(states.promoteSealKey(d)).toEqual({ current: 'seal-2', previous: 'seal-1' });
    const before = states.retireSealKey(d, 'seal-1');
    expect(before.privateKey).toBeDefined();
    expect(d.sealingKeys['seal-1']).toMatchObject({ state: 'retired', publicKey: before.publicKey });
    expect(d.sealingKeys['seal-1']!.privateKey).toBeUndefined();
    expect(describeDocument(d).sealingKeys['seal-1']).toMatchObject({ heldIn: 'destroyed' });
    expect(() => states.retireSealKey(d, 'seal-2')).toThrow(/is current/);
    expect(states.nextSealKeyId(d)).toBe('seal-3');
  });

  it('reads a v1 keyring file as a plain v2 document with states', () => {
    const pair = () => {
      const k = generateKeyPairSync('ed25519');
      return { privateKey: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(), createdAt: '2025-01-01T00:00:00.000Z' };
    };
    const v1 = {
      format: 'linkgw-keyring-v1',
      current: 2,
      masters: { '1': secret(1), '2': secret(2) },
      subject: secret(9),
      cache: secret(8),
      sealing: { current: 'seal-2', keys: { 'seal-1': pair(), 'seal-2': pair() } },
      createdAt: '2025-01-01T00:00:00.000Z',
    };
    const d = parseKeyringDocument(JSON.stringify(v1), 'v1');
    expect(d).toMatchObject({ format: 'linkgw-keyring-v2', protection: { kind: 'plain' }, subject: secret(9), cache: secret(8) });
    expect(codeStates(d)).toEqual({ 1: 'previous', 2: 'current' });
    expect(d.codeKeys['2']!.secret).toBe(secret(2));
    expect(d.sealingKeys['seal-2']).toMatchObject({ state: 'current', publicKey: v1.sealing.keys['seal-2'].publicKey });
    expect(() => parseKeyringDocument(JSON.stringify({ ...v1, format: 'linkgw-keyring-v9' }), 'x')).toThrow(/not a linkgw keyring/);
    expect(() => parseKeyringDocument(JSON.stringify({ ...d, codeKeys: { '1': { state: 'previous', createdAt: '', secret: secret(1) } } }), 'x')).toThrow(/exactly one code key must be current/);
  });
});
