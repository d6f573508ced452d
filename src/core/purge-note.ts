/**
 * The signed statement of a purge (issue 12 item 6): the log's records below leaf N were removed on purpose,
 * and the tree of N leaves had this root. It is a C2SP checkpoint of size N signed by the log's key, with one
 * extension line that no ordinary checkpoint carries:
 *
 *     <origin>\n<N>\n<base64 root at N>\nlinkgw-purge <purged at, ms> <before, ms>\n
 *
 * The extension line is what makes it a purge: an ordinary checkpoint of size N, which anyone with the store
 * can copy, does not allow deleting the records below N. Any tool that reads checkpoints reads it (extension
 * lines are opaque to them) and sees a true statement of the log's tree at N.
 */
import { checkpointText, openCheckpoint, type Checkpoint } from './checkpoint.js';
import { CompactRange } from './compact-range.js';
import { NoteError, signNote, type NoteSigner, type NoteVerifier } from './signed-note.js';

export const PURGE_EXTENSION = 'linkgw-purge';

export interface PurgeStatement {
  readonly origin: string;
  /** Leaves [0, belowLeaf) were purged. */
  readonly belowLeaf: number;
  /** The root of the tree of `belowLeaf` leaves. */
  readonly rootHash: Buffer;
  /** When the purge ran, ms since the epoch. */
  readonly purgedAt: number;
  /** The purge removed records requested before this time, ms since the epoch. */
  readonly before: number;
}

function checkpointOf(p: PurgeStatement): Checkpoint {
  return { origin: p.origin, size: p.belowLeaf, rootHash: p.rootHash, extensions: [`${PURGE_EXTENSION} ${p.purgedAt} ${p.before}`] };
}

/** The note text of a purge statement. */
export function purgeText(p: PurgeStatement): string {
  return checkpointText(checkpointOf(p));
}

/** Signs a purge statement with the log's note key (named as the origin). */
export async function signPurge(p: PurgeStatement, logSigner: NoteSigner): Promise<string> {
  if (logSigner.name !== p.origin) throw new NoteError('the log key name must be the purge origin');
  return signNote(purgeText(p), [logSigner]);
}

/**
 * Checks a stored purge: its note must be signed by a key of the log, be a purge statement (not a plain
 * checkpoint) of exactly these values, and the frontier hashes must fold to its root. Throws NoteError.
 */
export function checkPurge(signedNote: string, verifiers: readonly NoteVerifier[], p: PurgeStatement, frontier: readonly Uint8Array[]): void {
  const { checkpoint } = openCheckpoint(signedNote, verifiers, { origin: p.origin });
  const line = checkpoint.extensions.find((e) => e.startsWith(`${PURGE_EXTENSION} `));
  if (!line) throw new NoteError('the note is a plain checkpoint, not a purge statement');
  if (checkpoint.extensions.length !== 1) throw new NoteError('a purge statement has exactly one extension line');
  const [, at, before] = line.split(' ');
  if (checkpoint.size !== p.belowLeaf || !checkpoint.rootHash.equals(p.rootHash) || at !== String(p.purgedAt) || before !== String(p.before))
    throw new NoteError('the stored purge differs from the statement signed for it');
  let range: CompactRange;
  try {
    range = CompactRange.fromNodes(p.belowLeaf, frontier);
  } catch (e) {
    throw new NoteError(`the purge frontier: ${(e as Error).message}`);
  }
  if (!range.root().equals(p.rootHash)) throw new NoteError('the purge frontier does not fold to the signed root');
}
