/**
 * C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the signed statement of a log's size and root.
 *
 *     <origin>\n<tree size, decimal>\n<base64 root hash>\n[extension lines]
 *
 * signed as a C2SP signed note whose log key name is the origin. This is what
 * `github.com/transparency-dev/formats/log.ParseCheckpoint` reads.
 */
import { HASH_SIZE } from './merkle.js';
import { isValidKeyName, NoteError, openNote, signNote, type NoteSigner, type NoteVerifier, type OpenedNote } from './signed-note.js';

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  /** Opaque extension lines, each non-empty (the log writes none; kept when reading others'). */
  readonly extensions: readonly string[];
}

const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

/** An origin is a usable note key name: non-empty, no spaces, no plus sign. */
export function isValidOrigin(origin: string): boolean {
  return isValidKeyName(origin) && !origin.includes('\n');
}

/** The note text of a checkpoint. */
export function checkpointText(c: Checkpoint): string {
  if (!isValidOrigin(c.origin)) throw new NoteError(`invalid checkpoint origin "${c.origin}"`);
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new NoteError('checkpoint size: a whole number');
  if (c.rootHash.length !== HASH_SIZE) throw new NoteError('checkpoint root: 32 bytes');
  for (const e of c.extensions) if (e === '' || e.includes('\n')) throw new NoteError('checkpoint extension lines are single non-empty lines');
  return `${c.origin}\n${c.size}\n${c.rootHash.toString('base64')}\n${c.extensions.map((e) => `${e}\n`).join('')}`;
}

/** Parses a checkpoint's note text strictly (decimal size without leading zeros, a 32-byte base64 root). */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new NoteError('checkpoint: the text ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (origin === undefined || size === undefined || root === undefined) throw new NoteError('checkpoint: origin, size and root lines are required');
  if (origin === '') throw new NoteError('checkpoint: empty origin');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) throw new NoteError('checkpoint: malformed tree size');
  if (!BASE64_32.test(root)) throw new NoteError('checkpoint: the root is the base64 of 32 bytes');
  const rootHash = Buffer.from(root, 'base64');
  if (rootHash.toString('base64') !== root) throw new NoteError('checkpoint: non-canonical base64 root');
  if (extensions.some((e) => e === '')) throw new NoteError('checkpoint: empty extension line');
  return { origin, size: Number(size), rootHash, extensions };
}

/** A checkpoint signed by the log's key, whose name is the origin. */
export async function signCheckpoint(c: Checkpoint, logSigner: NoteSigner): Promise<string> {
  if (logSigner.name !== c.origin) throw new NoteError('the log key name must be the checkpoint origin');
  return signNote(checkpointText(c), [logSigner]);
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: OpenedNote;
}

/**
 * Opens a signed checkpoint: it must carry a verified signature from one of `logVerifiers` (named as the
 * origin), and its origin must be `origin` when given. `others` (witness cosigners) are checked when present.
 */
export function openCheckpoint(signed: string, logVerifiers: readonly NoteVerifier[], opts: { origin?: string; others?: readonly NoteVerifier[] } = {}): OpenedCheckpoint {
  const note = openNote(signed, [...logVerifiers, ...(opts.others ?? [])]);
  const checkpoint = parseCheckpointText(note.text);
  if (opts.origin !== undefined && checkpoint.origin !== opts.origin) throw new NoteError(`checkpoint of log "${checkpoint.origin}", expected "${opts.origin}"`);
  const byLog = note.verified.some((s) => s.name === checkpoint.origin && logVerifiers.some((v) => v.name === s.name && v.keyId === s.keyId));
  if (!byLog) throw new NoteError(`the checkpoint is not signed by a known key of log "${checkpoint.origin}"`);
  return { checkpoint, note };
}
