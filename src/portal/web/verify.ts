/**
 * The citizen's verifier: checks an access record shown by the portal against its inclusion proof, the log's
 * signed checkpoint and the witnesses' cosignatures, and checks consistency proofs between checkpoints.
 *
 * One module for the browser and for Node (tests): it uses only `globalThis.crypto.subtle` (SHA-256, Ed25519),
 * TextEncoder/TextDecoder and atob, and imports nothing. It is an independent reading of docs/transparency.md
 * (the leaf), C2SP signed-note, tlog-checkpoint and tlog-cosignature, and RFC 9162 §2.1.3.2 / §2.1.4.2: it
 * shares no code with the gateway (src/core), so a fault there is not repeated here.
 *
 * Records arrive as protobuf-es canonical proto3 JSON of `linkage.v1.AccessRecord` (the download format):
 * default values are omitted, uint64 are strings, bytes are base64, timestamps RFC 3339, enums by name.
 */

// ---------------------------------------------------------------------------------------------------------
// Types of the wire (proto3 JSON) and of results.

export interface InclusionProofJson {
  origin?: string;
  leafIndex?: string | number;
  treeSize?: string | number;
  hashes?: string[];
  leafHash?: string;
  checkpoint?: string;
  leaf?: string;
}

export interface AccessRecordJson {
  recordId?: string;
  requestedAt?: string;
  providedAt?: string;
  requester?: string;
  provider?: string;
  procedure?: string;
  legalBasisRow?: string;
  item?: string;
  outcome?: string | number;
  cursor?: string;
  proof?: InclusionProofJson;
  correctsRecordId?: string;
}

/** linkage.v1.Outcome by name (proto3 JSON prints enum names). */
export const OUTCOMES: readonly string[] = [
  'OUTCOME_UNSPECIFIED',
  'OUTCOME_ISSUED',
  'OUTCOME_PROVIDED',
  'OUTCOME_DENIED',
  'OUTCOME_NOT_FOUND',
  'OUTCOME_FAILED',
  'OUTCOME_RECORDS_READ',
  'OUTCOME_BINDING_REPORTED',
  'OUTCOME_NOT_RELEASED',
];
const NOT_RELEASED = 8;

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
}

/** A checkpoint whose log signature verified, with the witnesses whose cosignatures verified. */
export interface OpenedCheckpoint extends Checkpoint {
  readonly note: string;
  readonly witnesses: readonly string[];
}

export type ProofStatus = 'verified' | 'failed' | 'pending';

export interface RecordVerdict {
  readonly status: ProofStatus;
  /** Why it failed (English, for the page to translate by `code`). */
  readonly reason?: string;
  readonly code?: FailureCode;
  readonly checkpoint?: OpenedCheckpoint;
}

export type FailureCode = 'leaf-malformed' | 'leaf-mismatch' | 'leaf-hash' | 'non-disclosable' | 'checkpoint' | 'inclusion' | 'proof-malformed';

export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bytes.

const subtle = (): SubtleCrypto => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto is not available (a secure context is needed)');
  return s;
};

type SubtleCrypto = NonNullable<typeof globalThis.crypto>['subtle'];

const utf8 = new TextEncoder();

export function fromBase64(s: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new VerifyError('proof-malformed', 'not base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', ab(data)));
}

/** WebCrypto takes an ArrayBuffer of exactly the bytes (a view's buffer may be larger or shared). */
const ab = (u: Uint8Array): ArrayBuffer => u.slice().buffer as ArrayBuffer;

const LEAF_PREFIX = new Uint8Array([0]);
const NODE_PREFIX = new Uint8Array([1]);
export const leafHashOf = (leaf: Uint8Array) => sha256(concat(LEAF_PREFIX, leaf));
const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(concat(NODE_PREFIX, l, r));

// ---------------------------------------------------------------------------------------------------------
// The leaf (docs/transparency.md, "The leaf").

const LEAF_LABEL = 'linkgw/access-record/v1\n';

export interface LeafFields {
  readonly origin: string;
  readonly leafIndex: number;
  readonly recordId: string;
  readonly requestedAt: number;
  readonly providedAt: number | null;
  readonly requester: string;
  readonly provider: string;
  readonly procedure: string;
  readonly legalBasisRow: string;
  readonly item: string;
  readonly outcome: number;
  readonly nonDisclosable: boolean;
  readonly persons: number;
  readonly subjectsCommitment: Uint8Array;
  readonly correctsRecordId: string | null;
}

/** Decodes the canonical leaf; throws VerifyError('leaf-malformed') on anything that is not exactly one. */
export function decodeLeaf(b: Uint8Array): LeafFields {
  let at = 0;
  const bad = (why: string): never => {
    throw new VerifyError('leaf-malformed', `leaf: ${why}`);
  };
  const need = (n: number) => {
    if (at + n > b.length) bad('truncated');
  };
  const u8 = () => {
    need(1);
    return b[at++]!;
  };
  const u16 = () => {
    need(2);
    const v = (b[at]! << 8) | b[at + 1]!;
    at += 2;
    return v;
  };
  const u64 = () => {
    need(8);
    let v = 0;
    for (let i = 0; i < 8; i++) v = v * 256 + b[at + i]!;
    at += 8;
    if (!Number.isSafeInteger(v)) bad('number too large');
    return v;
  };
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const str = () => {
    const n = u16();
    need(n);
    let s = '';
    try {
      s = decoder.decode(b.subarray(at, at + n));
    } catch {
      bad('not UTF-8');
    }
    at += n;
    return s;
  };
  const label = utf8.encode(LEAF_LABEL);
  need(label.length);
  if (!equal(b.subarray(0, label.length), label)) bad('not a linkgw access record v1');
  at = label.length;
  const origin = str();
  const leafIndex = u64();
  const recordId = str();
  const requestedAt = u64();
  const hasProvided = u8();
  const provided = u64();
  if (hasProvided > 1 || (hasProvided === 0 && provided !== 0)) bad('malformed provided-at');
  const requester = str();
  const provider = str();
  const procedure = str();
  const legalBasisRow = str();
  const item = str();
  const outcome = u8();
  const nd = u8();
  const persons = u8();
  if (nd > 1 || (persons !== 1 && persons !== 2)) bad('malformed flags');
  need(32);
  const subjectsCommitment = b.slice(at, at + 32);
  at += 32;
  const correctsRecordId = outcome === NOT_RELEASED ? str() : null;
  if (correctsRecordId === '') bad('a NOT_RELEASED record names the record it corrects');
  if (at !== b.length) bad('trailing bytes');
  return {
    origin,
    leafIndex,
    recordId,
    requestedAt,
    providedAt: hasProvided ? provided : null,
    requester,
    provider,
    procedure,
    legalBasisRow,
    item,
    outcome,
    nonDisclosable: nd === 1,
    persons,
    subjectsCommitment,
    correctsRecordId,
  };
}

/** Milliseconds of an RFC 3339 UTC timestamp as proto3 JSON prints it; sub-millisecond digits must be zero. */
export function timestampMs(s: string): number {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(s);
  if (!m) throw new VerifyError('leaf-mismatch', 'a time is not an RFC 3339 UTC timestamp');
  const whole = Date.parse(`${m[1]}Z`);
  const frac = (m[2] ?? '').padEnd(9, '0');
  if (!Number.isFinite(whole) || !/^0{6}$/.test(frac.slice(3))) throw new VerifyError('leaf-mismatch', 'a time is finer than the milliseconds the leaf holds');
  return whole + Number(frac.slice(0, 3));
}

export function outcomeNumber(o: string | number | undefined): number {
  if (o === undefined) return 0;
  if (typeof o === 'number') return o;
  const i = OUTCOMES.indexOf(o);
  if (i < 0) throw new VerifyError('leaf-mismatch', `unknown outcome ${o}`);
  return i;
}

function uint(v: string | number | undefined, what: string): number {
  const n = v === undefined ? 0 : typeof v === 'number' ? v : /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new VerifyError('proof-malformed', `${what}: not a whole number`);
  return n;
}

/** Compares every field the page shows with the leaf; throws VerifyError('leaf-mismatch') naming the first that differs. */
export function checkFieldsMatch(r: AccessRecordJson, leaf: LeafFields, origin: string, leafIndex: number): void {
  const differs = (field: string): never => {
    throw new VerifyError('leaf-mismatch', `the record's ${field} is not the one in the log`);
  };
  if (leaf.origin !== origin) differs('log');
  if (leaf.leafIndex !== leafIndex) differs('position');
  if (leaf.recordId !== (r.recordId ?? '')) differs('id');
  if (r.requestedAt === undefined || leaf.requestedAt !== timestampMs(r.requestedAt)) differs('request time');
  if ((r.providedAt === undefined ? null : timestampMs(r.providedAt)) !== leaf.providedAt) differs('provision time');
  if (leaf.requester !== (r.requester ?? '')) differs('requester');
  if (leaf.provider !== (r.provider ?? '')) differs('provider');
  if (leaf.procedure !== (r.procedure ?? '')) differs('procedure');
  if (leaf.legalBasisRow !== (r.legalBasisRow ?? '')) differs('legal-basis row');
  if (leaf.item !== (r.item ?? '')) differs('item');
  if (leaf.outcome !== outcomeNumber(r.outcome)) differs('outcome');
  if ((leaf.correctsRecordId ?? '') !== (r.correctsRecordId ?? '')) differs('corrected record');
}

// ---------------------------------------------------------------------------------------------------------
// Signed notes, checkpoints and cosignatures (c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature).

const SIG_ED25519 = 0x01;
const SIG_COSIGNATURE_V1 = 0x04;

export interface VerifierKey {
  /** The string as configured: `<name>+<key id>+<base64(type ‖ key)>`. */
  readonly vkey: string;
  readonly name: string;
  readonly keyId: number;
  readonly type: number;
  readonly publicKey: Uint8Array;
  /** SHA-256 of the whole verifier key string, hex: what a person compares with a published source. */
  readonly fingerprint: string;
}

async function keyIdOf(name: string, type: number, publicKey: Uint8Array): Promise<number> {
  const h = await sha256(concat(utf8.encode(`${name}\n`), new Uint8Array([type]), publicKey));
  return ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
}

const NAME = /^[^\s+]+$/u;

/** Parses a note verifier key (what `note.NewVerifier` reads); throws Error when malformed or its key id is wrong. */
export async function parseVerifierKey(vkey: string): Promise<VerifierKey> {
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  const name = vkey.slice(0, first);
  const id = vkey.slice(first + 1, second);
  const b64 = vkey.slice(second + 1);
  if (first <= 0 || second < 0 || !NAME.test(name) || !/^[0-9a-f]{8}$/.test(id)) throw new Error('malformed verifier key');
  let raw: Uint8Array;
  try {
    raw = fromBase64(b64);
  } catch {
    throw new Error('malformed verifier key');
  }
  if (raw.length !== 33 || toBase64(raw) !== b64) throw new Error('malformed verifier key: an Ed25519 key is 32 bytes');
  const type = raw[0]!;
  if (type !== SIG_ED25519 && type !== SIG_COSIGNATURE_V1) throw new Error('verifier key of an unknown type');
  const publicKey = raw.slice(1);
  const keyId = parseInt(id, 16);
  if ((await keyIdOf(name, type, publicKey)) !== keyId) throw new Error('verifier key: the key id does not match the key');
  return { vkey, name, keyId, type, publicKey, fingerprint: toHex(await sha256(utf8.encode(vkey))) };
}

interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

export function parseNote(msg: string): { text: string; signatures: NoteSignature[] } {
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new VerifyError('checkpoint', 'malformed note: no blank line before the signatures');
  const text = msg.slice(0, split + 1);
  const block = msg.slice(split + 2);
  if (!block.endsWith('\n')) throw new VerifyError('checkpoint', 'malformed note: no signature lines');
  const signatures: NoteSignature[] = [];
  for (const line of block.slice(0, -1).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (!m || m[1]!.includes('+')) throw new VerifyError('checkpoint', 'malformed note: bad signature line');
    const sig = fromBase64(m[2]!);
    if (sig.length < 5) throw new VerifyError('checkpoint', 'malformed note: bad signature line');
    signatures.push({ name: m[1]!, keyId: ((sig[0]! << 24) >>> 0) + (sig[1]! << 16) + (sig[2]! << 8) + sig[3]!, signature: sig.slice(4) });
  }
  if (signatures.length === 0 || signatures.length > 100) throw new VerifyError('checkpoint', 'malformed note: no or too many signatures');
  return { text, signatures };
}

export function parseCheckpointText(text: string): Checkpoint {
  const lines = text.slice(0, -1).split('\n');
  const [origin, size, root] = lines;
  if (!text.endsWith('\n') || !origin || size === undefined || root === undefined) throw new VerifyError('checkpoint', 'malformed checkpoint');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw new VerifyError('checkpoint', 'malformed checkpoint size');
  const rootHash = /^[A-Za-z0-9+/]{43}=$/.test(root) ? fromBase64(root) : null;
  if (!rootHash || rootHash.length !== 32 || toBase64(rootHash) !== root) throw new VerifyError('checkpoint', 'malformed checkpoint root');
  if (lines.slice(3).some((e) => e === '')) throw new VerifyError('checkpoint', 'malformed checkpoint extension');
  return { origin, size: Number(size), root: rootHash };
}

const importedKeys = new Map<string, Promise<CryptoKey>>();
type CryptoKey = Awaited<ReturnType<SubtleCrypto['importKey']>>;

function ed25519Key(raw: Uint8Array): Promise<CryptoKey> {
  const k = toHex(raw);
  let p = importedKeys.get(k);
  if (!p) importedKeys.set(k, (p = subtle().importKey('raw', ab(raw), { name: 'Ed25519' }, false, ['verify'])));
  return p;
}

async function ed25519Verify(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  if (signature.length !== 64) return false;
  try {
    return await subtle().verify({ name: 'Ed25519' }, await ed25519Key(publicKey), ab(signature), ab(message));
  } catch {
    return false;
  }
}

/** Whether one signature line verifies under one key (Ed25519 note signature, or cosignature/v1). */
async function signatureVerifies(k: VerifierKey, text: string, sig: Uint8Array): Promise<boolean> {
  if (k.type === SIG_ED25519) return ed25519Verify(k.publicKey, sig, utf8.encode(text));
  // cosignature/v1: 8-byte big-endian timestamp, then the signature over "cosignature/v1\ntime <t>\n<text>".
  if (sig.length !== 72) return false;
  let t = 0;
  for (let i = 0; i < 8; i++) t = t * 256 + sig[i]!;
  if (!Number.isSafeInteger(t)) return false;
  return ed25519Verify(k.publicKey, sig.slice(8), utf8.encode(`cosignature/v1\ntime ${t}\n${text}`));
}

export interface TrustedKeys {
  /** Log keys (type 0x01): the key name is the log's origin. */
  readonly logs: readonly VerifierKey[];
  /** Witness keys (type 0x04). */
  readonly witnesses: readonly VerifierKey[];
}

/** Parses a list of verifier keys into log keys and witness keys. */
export async function trustedKeys(vkeys: readonly string[]): Promise<TrustedKeys> {
  const keys = await Promise.all(vkeys.map(parseVerifierKey));
  return { logs: keys.filter((k) => k.type === SIG_ED25519), witnesses: keys.filter((k) => k.type === SIG_COSIGNATURE_V1) };
}

/**
 * Opens a signed checkpoint as Go's `note.Open` and `log.ParseCheckpoint` do: a signature by a trusted key that
 * does not verify rejects it, and it needs a verified signature by a trusted key named as its origin. Returns
 * the witnesses whose cosignatures verified.
 */
export async function openCheckpoint(note: string, trust: TrustedKeys): Promise<OpenedCheckpoint> {
  const { text, signatures } = parseNote(note);
  const cp = parseCheckpointText(text);
  let byLog = false;
  const witnesses: string[] = [];
  for (const s of signatures) {
    const k = [...trust.logs, ...trust.witnesses].find((x) => x.name === s.name && x.keyId === s.keyId);
    if (!k) continue;
    if (!(await signatureVerifies(k, text, s.signature))) throw new VerifyError('checkpoint', `the signature by ${s.name} does not verify`);
    if (k.type === SIG_ED25519 && k.name === cp.origin) byLog = true;
    else if (k.type === SIG_COSIGNATURE_V1 && !witnesses.includes(k.name)) witnesses.push(k.name);
  }
  if (!byLog) throw new VerifyError('checkpoint', `the checkpoint is not signed by a trusted key of log ${cp.origin}`);
  return { ...cp, note, witnesses };
}

// ---------------------------------------------------------------------------------------------------------
// Merkle proofs (RFC 9162 §2.1.3.2 and §2.1.4.2).

const isOdd = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/** The root an inclusion proof yields; throws VerifyError('inclusion') for a proof of the wrong length. */
export async function rootFromInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Promise<Uint8Array> {
  if (index >= size) throw new VerifyError('inclusion', 'the leaf is not in the tree');
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (p.length !== 32) throw new VerifyError('inclusion', 'a proof hash is not 32 bytes');
    if (sn === 0) throw new VerifyError('inclusion', 'the proof is too long');
    if (isOdd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!isOdd(fn))
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
    } else r = await nodeHash(r, p);
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new VerifyError('inclusion', 'the proof is too short');
  return r;
}

export type ConsistencyVerdict = { ok: true } | { ok: false; kind: 'rolled-back' | 'forked' | 'malformed'; reason: string };

/** Whether the tree (size2, root2) extends (size1, root1), by the consistency proof. */
export async function checkConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): Promise<ConsistencyVerdict> {
  if (size2 < size1) return { ok: false, kind: 'rolled-back', reason: `the log shrank from ${size1} to ${size2} records` };
  if (size1 === size2) {
    if (!equal(root1, root2)) return { ok: false, kind: 'forked', reason: 'two different trees of the same size' };
    return proof.length ? { ok: false, kind: 'malformed', reason: 'a proof between equal sizes is empty' } : { ok: true };
  }
  if (size1 === 0) return proof.length ? { ok: false, kind: 'malformed', reason: 'a proof from the empty tree is empty' } : { ok: true };
  if (proof.length === 0 || proof.some((p) => p.length !== 32)) return { ok: false, kind: 'malformed', reason: 'malformed consistency proof' };
  const pow2 = 2 ** Math.round(Math.log2(size1)) === size1;
  const path = pow2 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return { ok: false, kind: 'malformed', reason: 'the consistency proof is too long' };
    if (isOdd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!isOdd(fn))
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
    } else sr = await nodeHash(sr, c);
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return { ok: false, kind: 'malformed', reason: 'the consistency proof is too short' };
  if (!equal(fr, root1)) return { ok: false, kind: 'forked', reason: 'the log no longer contains the tree you saw: it was rewritten' };
  if (!equal(sr, root2)) return { ok: false, kind: 'forked', reason: 'the proof does not lead to the new checkpoint' };
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------------------
// A record.

/**
 * Verifies one record as shown: pending without a proof (newer than the latest checkpoint); verified when the
 * leaf decodes to exactly the shown fields, is disclosable, hashes to the leaf hash, and leads by the inclusion
 * path to the root of a checkpoint signed by the log's trusted key (cosignatures checked when present).
 * `opened` caches checkpoints already opened (many records share one).
 */
export async function verifyRecord(r: AccessRecordJson, trust: TrustedKeys, opened = new Map<string, Promise<OpenedCheckpoint>>()): Promise<RecordVerdict> {
  const p = r.proof;
  if (!p) return { status: 'pending' };
  try {
    const origin = p.origin ?? '';
    const leafIndex = uint(p.leafIndex, 'leaf index');
    const treeSize = uint(p.treeSize, 'tree size');
    const leafBytes = fromBase64(p.leaf ?? '');
    const leaf = decodeLeaf(leafBytes);
    checkFieldsMatch(r, leaf, origin, leafIndex);
    if (leaf.nonDisclosable) throw new VerifyError('non-disclosable', 'the log marks this record non-disclosable');
    const leafHash = await leafHashOf(leafBytes);
    if (!equal(leafHash, fromBase64(p.leafHash ?? ''))) throw new VerifyError('leaf-hash', 'the leaf does not hash to the leaf hash');
    const note = p.checkpoint ?? '';
    let cpp = opened.get(note);
    if (!cpp) opened.set(note, (cpp = openCheckpoint(note, trust)));
    const cp = await cpp;
    if (cp.origin !== origin) throw new VerifyError('checkpoint', 'the checkpoint is of another log');
    if (cp.size !== treeSize) throw new VerifyError('inclusion', 'the proof is for another tree size than the checkpoint');
    const root = await rootFromInclusion(leafIndex, treeSize, leafHash, (p.hashes ?? []).map(fromBase64));
    if (!equal(root, cp.root)) throw new VerifyError('inclusion', 'the inclusion path does not lead to the checkpoint root');
    return { status: 'verified', checkpoint: cp };
  } catch (e) {
    if (e instanceof VerifyError) return { status: 'failed', code: e.code, reason: e.message };
    return { status: 'failed', code: 'proof-malformed', reason: e instanceof Error ? e.message : String(e) };
  }
}
