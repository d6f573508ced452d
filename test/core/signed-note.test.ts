/**
 * C2SP signed notes, checkpoints and cosignatures: known answers from the specification and from the Go
 * reference (golang.org/x/mod/sumdb/note note_test.go), malformed notes, and wrong keys. Signing goes through
 * the gateway's Signer seam.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkpointText, openCheckpoint, parseCheckpointText, signCheckpoint } from '../../src/core/checkpoint.js';
import { cosign, cosignatureMessage, cosignatureVerifier, cosignatureVerifierFromKey, cosignerVerifierKey, splitCosignature } from '../../src/core/cosignature.js';
import { EMPTY_ROOT } from '../../src/core/merkle.js';
import {
  decodeNoteBytes,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  isValidKeyName,
  noteVerifierFromKey,
  NoteError,
  openNote,
  parseNote,
  parseVerifierKey,
  rawEd25519,
  signNote,
  SIG_ED25519,
  verifierKey,
} from '../../src/core/signed-note.js';
import { KeyObjectSigner } from '../../src/keys/signer.js';

// golang.org/x/mod/sumdb/note: the PeterNeumann and EnochRoot examples.
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
// c2sp.org/signed-note, "Verifier keys", Example.
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE = 'This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

/** A Signer (the gateway's seam) over the Ed25519 seed of a Go private note key. */
function signerFromGoSkey(skey: string): KeyObjectSigner {
  const seed = Buffer.from(skey.split('+').slice(4).join('+'), 'base64');
  expect(seed[0]).toBe(SIG_ED25519);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed.subarray(1)]);
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return new KeyObjectSigner('go-example', privateKey, createPublicKey(privateKey));
}

const peter = signerFromGoSkey(PETER_SKEY);
const fresh = () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return new KeyObjectSigner('k', privateKey, publicKey);
};

describe('signed notes', () => {
  it('compute the reference key id, verifier key and signature byte for byte', async () => {
    expect(verifierKey('PeterNeumann', SIG_ED25519, parseVerifierKey(PETER_VKEY).publicKey)).toBe(PETER_VKEY);
    // The verifier key derived from the private key's public half is the published one.
    expect(verifierKey('PeterNeumann', SIG_ED25519, rawEd25519(peter.publicKey))).toBe(PETER_VKEY);
    const signed = await signNote(TEXT, [ed25519NoteSigner('PeterNeumann', peter)]);
    expect(signed).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it('open the specification example and the Go examples', () => {
    expect(openNote(SPEC_NOTE, [noteVerifierFromKey(SPEC_VKEY)]).text).toBe('This is an example message.\n');
    const both = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    const one = openNote(both, [noteVerifierFromKey(PETER_VKEY)]);
    expect(one.text).toBe(TEXT);
    expect(one.verified.map((s) => [s.name, s.keyId])).toEqual([['PeterNeumann', 0xc74f20a3]]);
    expect(one.unverified.map((s) => [s.name, s.keyId])).toEqual([['EnochRoot', 0xaf0cfe78]]);
    expect(openNote(both, [noteVerifierFromKey(PETER_VKEY), noteVerifierFromKey(ENOCH_VKEY)]).verified).toHaveLength(2);
    expect(() => openNote(both, [])).toThrow(/no signature by a known key/);
    // Repeated signatures count once; repeated unknown lines are kept once.
    const dup = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}`, [noteVerifierFromKey(PETER_VKEY)]);
    expect([dup.verified.length, dup.unverified.length]).toEqual([1, 1]);
    // An ambiguous verifier list is refused only when a signature needs it.
    const enoch = noteVerifierFromKey(ENOCH_VKEY);
    expect(() => openNote(`${TEXT}\n${ENOCH_SIG}`, [enoch, noteVerifierFromKey(PETER_VKEY), enoch])).toThrow(/ambiguous/);
    expect(openNote(`${TEXT}\n${PETER_SIG}`, [enoch, noteVerifierFromKey(PETER_VKEY), enoch]).verified).toHaveLength(1);
  });

  it('refuse malformed notes as the Go reference does', () => {
    const peterV = [noteVerifierFromKey(PETER_VKEY)];
    const bad = [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\x01${TEXT}\n${PETER_SIG}`,
      `${TEXT}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n${PETER_SIG.repeat(101)}`,
      `\ud800${TEXT}\n${PETER_SIG}`,
    ];
    for (const msg of bad) expect(() => openNote(msg, peterV), JSON.stringify(msg.slice(0, 40))).toThrow(NoteError);
    expect(() => decodeNoteBytes(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${TEXT}\n${PETER_SIG}`)]))).toThrow(/not UTF-8/);
    expect(decodeNoteBytes(Buffer.from(SPEC_NOTE))).toBe(SPEC_NOTE);
    // A signature by a known key that does not verify rejects the whole note.
    expect(() => openNote(`${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`, peterV)).toThrow(/invalid signature by PeterNeumann\+c74f20a3/);
    expect(() => openNote(`${TEXT.replace('answer', 'problem')}\n${PETER_SIG}`, peterV)).toThrow(/invalid signature/);
  });

  it('check key names and verifier keys', () => {
    for (const name of ['example.com/log', 'PeterNeumann', 'linkgw/records/host-1']) expect(isValidKeyName(name)).toBe(true);
    for (const name of ['', 'a b', 'a+b', 'a\tb', 'a\u00a0b', 'a\u3000b']) expect(isValidKeyName(name), JSON.stringify(name)).toBe(false);
    expect(() => parseVerifierKey(PETER_VKEY.replace('c74f20a3', 'c74f20a4'))).toThrow(/key id does not match/);
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3')).toThrow(/malformed/);
    expect(() => parseVerifierKey(`Peter Neumann+c74f20a3+${PETER_VKEY.split('+').slice(2).join('+')}`)).toThrow(/malformed/);
    expect(parseVerifierKey(PETER_VKEY)).toMatchObject({ name: 'PeterNeumann', keyId: 0xc74f20a3, type: 1 });
  });

  it('carry other signers\' lines and need at least one signature', async () => {
    const k = fresh();
    const signed = await signNote(TEXT, [ed25519NoteSigner('other.example/k', k)], [PETER_SIG]);
    const opened = openNote(signed, [noteVerifierFromKey(PETER_VKEY), ed25519NoteVerifier('other.example/k', k.publicKey)]);
    expect(opened.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'other.example/k']);
    await expect(signNote(TEXT, [])).rejects.toThrow(/at least one signature/);
    await expect(signNote('no newline', [ed25519NoteSigner('x', k)])).rejects.toThrow(/ends with a newline/);
  });
});

describe('checkpoints', () => {
  const root = Buffer.from('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=', 'base64');

  it('are the three lines of the C2SP example', () => {
    const text = checkpointText({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash: root, extensions: [] });
    expect(text).toBe('example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n');
    expect(parseCheckpointText(text)).toEqual({ origin: 'example.com/behind-the-sofa', size: 20852163, rootHash: root, extensions: [] });
    expect(parseCheckpointText(`${text}ext one\n`).extensions).toEqual(['ext one']);
    expect(checkpointText({ origin: 'o', size: 0, rootHash: EMPTY_ROOT, extensions: [] })).toBe('o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n');
  });

  it('refuse malformed texts', () => {
    const ok = 'o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    for (const bad of ['o\n5\n', '\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n', 'o\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n', 'o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n', 'o\n5\nAAAA\n', `${ok}\n`, ok.slice(0, -1)])
      expect(() => parseCheckpointText(bad), JSON.stringify(bad)).toThrow(NoteError);
  });

  it('are signed by the log key named as the origin, and refused from another key or another log', async () => {
    const log = fresh();
    const origin = 'linkgw/records/replica-a';
    const cp = { origin, size: 7, rootHash: root, extensions: [] };
    const signed = await signCheckpoint(cp, ed25519NoteSigner(origin, log));
    const v = ed25519NoteVerifier(origin, log.publicKey);
    expect(openCheckpoint(signed, [v], { origin }).checkpoint).toEqual(cp);
    expect(() => openCheckpoint(signed, [v], { origin: 'linkgw/records/replica-b' })).toThrow(/expected/);
    expect(() => openCheckpoint(signed, [ed25519NoteVerifier(origin, fresh().publicKey)])).toThrow(/no signature by a known key/);
    // Signed by a key whose name is not the origin: not a checkpoint of that log.
    const impostor = await signNote(checkpointText(cp), [ed25519NoteSigner('someone-else', log)]);
    expect(() => openCheckpoint(impostor, [v, ed25519NoteVerifier('someone-else', log.publicKey)])).toThrow(/not signed by a known key of log/);
    await expect(signCheckpoint(cp, ed25519NoteSigner('someone-else', log))).rejects.toThrow(/origin/);
  });
});

describe('cosignatures (cosignature/v1)', () => {
  const text = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

  it('sign the C2SP message: header, time, then the checkpoint text', () => {
    expect(cosignatureMessage(1679315147, text).toString()).toBe(`cosignature/v1\ntime 1679315147\n${text}`);
    expect(() => cosignatureMessage(1, 'just\none\n')).toThrow(/three lines/);
  });

  it('are deterministic for a fixed key and time, and verify only for their witness', async () => {
    const line = await cosign(text, 'witness.example/w1', peter, 1679315147);
    // Ed25519 is deterministic: this line is a known answer for the Go key above (checked against formats/note
    // by the interop test).
    expect(line).toBe(await cosign(text, 'witness.example/w1', peter, 1679315147));
    const sig = parseNote(`${text}\n${line}`).signatures[0]!;
    expect(splitCosignature(sig.signature)?.timestamp).toBe(1679315147);
    const vkey = cosignerVerifierKey('witness.example/w1', peter.publicKey);
    expect(parseVerifierKey(vkey).type).toBe(4);
    expect(vkey.split('+')[1]).not.toBe(verifierKey('witness.example/w1', SIG_ED25519, parseVerifierKey(vkey).publicKey).split('+')[1]);
    expect(openNote(`${text}\n${line}`, [cosignatureVerifierFromKey(vkey)]).verified).toHaveLength(1);
    expect(() => openNote(`${text}\n${line}`, [cosignatureVerifier('witness.example/w1', fresh().publicKey)])).toThrow(/no signature by a known key/);
    expect(() => openNote(`${text.replace('20852163', '20852164')}\n${line}`, [cosignatureVerifierFromKey(vkey)])).toThrow(/invalid signature/);
    // A plain note signature by the same key under the same name is not a cosignature.
    const plain = await signNote(text, [ed25519NoteSigner('witness.example/w1', peter)]);
    expect(() => openNote(plain, [cosignatureVerifierFromKey(vkey)])).toThrow(/no signature by a known key/);
  });
});
