/**
 * C2SP tlog-cosignature, Ed25519 `cosignature/v1` (signature type 0x04): a witness's statement that, at a
 * time, the checkpoint is the largest consistent tree it has seen of that log. The signature line is
 * `— <witness name> base64(key id ‖ timestamp (u64, big-endian seconds) ‖ Ed25519 signature)` over
 *
 *     cosignature/v1\ntime <timestamp>\n<the checkpoint's note text>
 *
 * This is what `github.com/transparency-dev/formats/note.NewVerifierForCosignatureV1` checks.
 */
import { verify as edVerify, type KeyObject } from 'node:crypto';
import {
  ed25519PublicKey,
  isValidKeyName,
  keyId,
  NoteError,
  parseVerifierKey,
  rawEd25519,
  SIG_COSIGNATURE_V1,
  SIG_ED25519,
  signatureLine,
  verifierKey,
  type Ed25519Signing,
  type NoteVerifier,
} from './signed-note.js';

/** The bytes a cosignature signs. */
export function cosignatureMessage(timestamp: number, noteText: string): Buffer {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new NoteError('cosignature time: whole seconds since the epoch');
  if (noteText.split('\n').length < 4 || !noteText.endsWith('\n')) throw new NoteError('a cosigned note is a checkpoint of at least three lines');
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${noteText}`, 'utf8');
}

export function cosignerKeyId(name: string, publicKey: KeyObject): number {
  return keyId(name, SIG_COSIGNATURE_V1, rawEd25519(publicKey));
}

/** The witness's verifier key, `<name>+<key id>+base64(0x04 ‖ key)`. */
export function cosignerVerifierKey(name: string, publicKey: KeyObject): string {
  return verifierKey(name, SIG_COSIGNATURE_V1, rawEd25519(publicKey));
}

/** A cosignature's timestamp and Ed25519 signature, from the signature bytes after the key id. */
export function splitCosignature(sig: Uint8Array): { timestamp: number; signature: Buffer } | null {
  if (sig.length !== 8 + 64) return null;
  const b = Buffer.from(sig);
  const t = b.readBigUInt64BE(0);
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { timestamp: Number(t), signature: b.subarray(8) };
}

export function cosignatureVerifier(name: string, publicKey: KeyObject | Uint8Array): NoteVerifier {
  const key = publicKey instanceof Uint8Array ? ed25519PublicKey(publicKey) : publicKey;
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name "${name}"`);
  return {
    name,
    keyId: cosignerKeyId(name, key),
    verify: (text, sig) => {
      const s = splitCosignature(sig);
      if (!s) return false;
      try {
        return edVerify(null, cosignatureMessage(s.timestamp, text.toString('utf8')), key, s.signature);
      } catch {
        return false;
      }
    },
  };
}

/** A cosignature verifier from a verifier key of type 0x04 (or 0x01, read as the same Ed25519 key). */
export function cosignatureVerifierFromKey(vkey: string): NoteVerifier {
  const k = parseVerifierKey(vkey);
  if (k.type !== SIG_COSIGNATURE_V1 && k.type !== SIG_ED25519) throw new NoteError('a cosignature/v1 verifier key has type 0x04');
  return cosignatureVerifier(k.name, k.publicKey);
}

/** A cosignature line (with its newline) over a checkpoint's note text, signed through the Signer seam. */
export async function cosign(noteText: string, name: string, signing: Ed25519Signing, timestamp: number): Promise<string> {
  const id = cosignerKeyId(name, signing.publicKey);
  const sig = await signing.sign(cosignatureMessage(timestamp, noteText));
  const body = Buffer.alloc(8 + sig.length);
  body.writeBigUInt64BE(BigInt(timestamp), 0);
  body.set(sig, 8);
  return signatureLine(name, id, body);
}
