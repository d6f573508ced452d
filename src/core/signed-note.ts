/**
 * C2SP signed notes (c2sp.org/signed-note, the format of golang.org/x/mod/sumdb/note): a text ending in a
 * newline, a blank line, and signature lines `— <key name> base64(key id ‖ signature)`.
 *
 * Key ids are SHA-256(key name ‖ "\n" ‖ signature type ‖ public key)[:4]; a verifier key is
 * `<name>+<key id, 8 hex>+base64(type ‖ public key)`, the string `note.NewVerifier` reads. Type 0x01 is an
 * Ed25519 signature over the note text; other types (cosignature/v1, in cosignature.ts) plug in as verifiers.
 *
 * Signing goes through an asynchronous signer (the gateway's Signer seam), so the private key may stay in an
 * HSM. Opening follows the Go reference: malformed notes are refused, unknown signers are set aside, a known
 * signer whose signature does not verify rejects the note, and a note needs at least one verified signature.
 */
import { createHash, createPublicKey, verify as edVerify, type KeyObject } from 'node:crypto';

export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;

const EM_DASH_LINE = '\u2014 ';
/** More signatures than this and a note is refused as malformed (Go's limit; the spec asks for at least 16). */
export const MAX_SIGNATURES = 100;

export class NoteError extends Error {
  override readonly name = 'NoteError';
}

/** Go's unicode.IsSpace: what a key name may not contain (besides '+'). */
const SPACE_OR_PLUS = /[\t\n\v\f\r +\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/;

/** Text that encodes to valid UTF-8 and has no ASCII control character other than newline. */
function isNoteText(s: string): boolean {
  return !LONE_SURROGATE.test(s) && !CONTROL.test(s);
}

/** Key names are non-empty and have no Unicode spaces and no plus sign. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !SPACE_OR_PLUS.test(name) && !LONE_SURROGATE.test(name);
}

export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  return createHash('sha256').update(name, 'utf8').update('\n').update(Buffer.from([type])).update(publicKey).digest().readUInt32BE(0);
}

export function hex8(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** The raw 32 bytes of an Ed25519 public key. */
export function rawEd25519(k: KeyObject): Buffer {
  const jwk = k.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new NoteError('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** `<name>+<key id>+base64(type ‖ key)`. */
export function verifierKey(name: string, type: number, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name "${name}"`);
  return `${name}+${hex8(keyId(name, type, publicKey))}+${Buffer.concat([Buffer.from([type]), publicKey]).toString('base64')}`;
}

/** The parts of a verifier key; throws NoteError if it is malformed or its key id does not match. */
export function parseVerifierKey(vkey: string): { name: string; keyId: number; type: number; publicKey: Buffer } {
  const [name, id, key64, ...rest] = vkey.split('+');
  // Base64 has '+' in its alphabet: the key part is everything after the second plus.
  const b64 = [key64, ...rest].join('+');
  if (!name || !isValidKeyName(name) || !id || !/^[0-9a-f]{8}$/.test(id) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new NoteError('malformed verifier key');
  const raw = Buffer.from(b64, 'base64');
  if (raw.length < 2 || raw.toString('base64') !== b64) throw new NoteError('malformed verifier key');
  const type = raw[0]!;
  const publicKey = raw.subarray(1);
  const want = parseInt(id, 16);
  if (keyId(name, type, publicKey) !== want) throw new NoteError('verifier key: the key id does not match the key');
  return { name, keyId: want, type, publicKey };
}

/** Checks one signature line's signature bytes (after the key id) against the note text. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(text: Buffer, signature: Buffer): boolean;
}

/** Makes one signature line's signature bytes (after the key id) over the note text. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(text: Buffer): Promise<Uint8Array>;
}

/** What the gateway's Signer seam provides: an Ed25519 public key and an asynchronous signature. */
export interface Ed25519Signing {
  readonly publicKey: KeyObject;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export function ed25519NoteVerifier(name: string, publicKey: KeyObject | Uint8Array): NoteVerifier {
  const key = publicKey instanceof Uint8Array ? ed25519PublicKey(publicKey) : publicKey;
  const raw = rawEd25519(key);
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name "${name}"`);
  return {
    name,
    keyId: keyId(name, SIG_ED25519, raw),
    verify: (text, sig) => sig.length === 64 && edVerify(null, text, key, sig),
  };
}

/** A note signer for key `name` over a Signer (a file key or an HSM). */
export function ed25519NoteSigner(name: string, signing: Ed25519Signing): NoteSigner {
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name "${name}"`);
  return { name, keyId: keyId(name, SIG_ED25519, rawEd25519(signing.publicKey)), sign: (text) => signing.sign(text) };
}

/** The note verifier for a verifier key of type Ed25519 (0x01). */
export function noteVerifierFromKey(vkey: string): NoteVerifier {
  const k = parseVerifierKey(vkey);
  if (k.type !== SIG_ED25519) throw new NoteError(`verifier key of type 0x${k.type.toString(16).padStart(2, '0')}; expected Ed25519 (0x01)`);
  return ed25519NoteVerifier(k.name, k.publicKey);
}

export function signatureLine(name: string, id: number, signature: Uint8Array): string {
  const b = Buffer.alloc(4 + signature.length);
  b.writeUInt32BE(id >>> 0, 0);
  b.set(signature, 4);
  return `${EM_DASH_LINE}${name} ${b.toString('base64')}\n`;
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('a note text ends with a newline');
  if (!isNoteText(text)) throw new NoteError('a note text is UTF-8 without control characters');
}

/** Signs `text` with every signer; `keep` are signature lines carried over (other signers' lines). */
export async function signNote(text: string, signers: readonly NoteSigner[], keep: readonly string[] = []): Promise<string> {
  checkText(text);
  const body = Buffer.from(text, 'utf8');
  const lines = [...keep];
  for (const s of signers) lines.push(signatureLine(s.name, s.keyId, await s.sign(body)));
  if (lines.length === 0) throw new NoteError('a signed note has at least one signature');
  return `${text}\n${lines.join('')}`;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The signature bytes after the key id. */
  readonly signature: Buffer;
  /** The whole line, with its newline. */
  readonly line: string;
}

/** A note received as bytes (an HTTP body, a file): refused unless it is valid UTF-8. */
export function decodeNoteBytes(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteError('malformed note: not UTF-8');
  }
}

/** Splits a signed note into its text and its signature lines, without checking any signature. */
export function parseNote(msg: string): { text: string; signatures: NoteSignature[] } {
  if (!isNoteText(msg)) throw new NoteError('malformed note: not UTF-8 text without control characters');
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('malformed note: no blank line before the signatures');
  const text = msg.slice(0, split + 1);
  const block = msg.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw new NoteError('malformed note: no signature lines');
  const signatures: NoteSignature[] = [];
  for (const raw of block.slice(0, -1).split('\n')) {
    if (!raw.startsWith(EM_DASH_LINE)) throw new NoteError('malformed note: a signature line starts with an em dash and a space');
    const rest = raw.slice(EM_DASH_LINE.length);
    const sp = rest.indexOf(' ');
    const name = sp < 0 ? rest : rest.slice(0, sp);
    const b64 = sp < 0 ? '' : rest.slice(sp + 1);
    const sig = Buffer.from(b64, 'base64');
    if (!isValidKeyName(name) || b64 === '' || sig.toString('base64') !== b64 || sig.length < 5) throw new NoteError('malformed note: bad signature line');
    if (signatures.length >= MAX_SIGNATURES) throw new NoteError('malformed note: too many signatures');
    signatures.push({ name, keyId: sig.readUInt32BE(0), signature: sig.subarray(4), line: `${raw}\n` });
  }
  return { text, signatures };
}

export interface OpenedNote {
  readonly text: string;
  /** Signatures verified by a known verifier, each verifier once. */
  readonly verified: NoteSignature[];
  /** Signatures of keys not among the verifiers (kept, not trusted). */
  readonly unverified: NoteSignature[];
}

/**
 * Opens a signed note against known verifiers, with the semantics of Go's `note.Open`. Throws NoteError for a
 * malformed note, for a signature by a known key that does not verify, and when no known key signed it.
 */
export function openNote(msg: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const { text, signatures } = parseNote(msg);
  const body = Buffer.from(text, 'utf8');
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  for (const s of signatures) {
    const matching = verifiers.filter((v) => v.name === s.name && v.keyId === s.keyId);
    if (matching.length > 1) throw new NoteError(`ambiguous verifiers for ${s.name}+${hex8(s.keyId)}`);
    const v = matching[0];
    const key = `${s.name}+${s.keyId}`;
    if (!v) {
      if (!unverified.some((u) => u.line === s.line)) unverified.push(s);
      continue;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    if (!v.verify(body, s.signature)) throw new NoteError(`invalid signature by ${s.name}+${hex8(s.keyId)}`);
    verified.push(s);
  }
  if (verified.length === 0) throw new NoteError('the note has no signature by a known key');
  return { text, verified, unverified };
}
