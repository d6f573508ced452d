/**
 * Inclusion and consistency proofs of a stored log: the core plans which perfect subtrees a proof needs, the
 * store serves their hashes in one call, and the core folds them. Many inclusion proofs at one tree size (a
 * page of records) share one fetch, and the upper nodes they have in common are fetched once.
 */
import { consistencyRanges, foldRange, inclusionRanges, plan, type LeafRange } from '../core/merkle.js';
import type { RecordStore } from './record-store.js';

async function proofs(store: RecordStore, logId: string, perProof: readonly LeafRange[][]): Promise<Buffer[][]> {
  const flat = perProof.flat();
  const { ids, parts } = plan(flat);
  const hashes = ids.length ? await store.nodes(logId, ids) : [];
  const folded = parts.map((p) => foldRange(p.map((i) => hashes[i]!)));
  const out: Buffer[][] = [];
  let at = 0;
  for (const ranges of perProof) {
    out.push(folded.slice(at, at + ranges.length));
    at += ranges.length;
  }
  return out;
}

/** The consistency proof from size1 to size2 of a log (both at most its stored size). */
export async function consistencyProofOf(store: RecordStore, logId: string, size1: number, size2: number): Promise<Buffer[]> {
  return (await proofs(store, logId, [consistencyRanges(size1, size2)]))[0]!;
}

/** Inclusion proofs of leaves of one log in its tree of `treeSize` leaves. */
export function inclusionProofsOf(store: RecordStore, logId: string, leafIndexes: readonly number[], treeSize: number): Promise<Buffer[][]> {
  return proofs(
    store,
    logId,
    leafIndexes.map((i) => inclusionRanges(i, treeSize)),
  );
}
