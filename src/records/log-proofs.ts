/**
 * Inclusion and consistency proofs of a stored log: the core plans which perfect subtrees a proof needs, the
 * store serves their hashes in one call, and the core folds them. Many inclusion proofs at one tree size (a
 * page of records) share one fetch, and the upper nodes they have in common are fetched once.
 */
import { storedRecordLeaf, type LoggedRecord } from '../core/access-record.js';
import { consistencyRanges, foldRange, inclusionRanges, plan, type LeafRange } from '../core/merkle.js';
import type { RecordStore } from './record-store.js';
import { cosignedNote } from './schema.js';

async function proofs(store: Pick<RecordStore, 'nodes'>, logId: string, perProof: readonly LeafRange[][]): Promise<Buffer[][]> {
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
export async function consistencyProofOf(store: Pick<RecordStore, 'nodes'>, logId: string, size1: number, size2: number): Promise<Buffer[]> {
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

/** A record's place in its log, and the proof of it at the log's latest checkpoint. */
export interface RecordInclusion {
  readonly origin: string;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly hashes: Buffer[];
  readonly leafHash: Buffer;
  /** The checkpoint with the witnesses' cosignatures. */
  readonly checkpoint: string;
  /** The record's canonical leaf bytes, rebuilt from its row. */
  readonly leaf: Buffer;
}

/**
 * Inclusion proofs of stored records at the latest checkpoint of each one's log (one read of the checkpoints,
 * one node fetch per log); null for a record newer than its log's latest checkpoint.
 */
export async function proofsOfRecords(store: RecordStore, records: readonly LoggedRecord[]): Promise<(RecordInclusion | null)[]> {
  const out: (RecordInclusion | null)[] = records.map(() => null);
  if (records.length === 0) return out;
  const latest = new Map((await store.latestCheckpoints()).map((c) => [c.logId, c]));
  const byLog = new Map<string, number[]>();
  records.forEach((r, i) => {
    const c = latest.get(r.logId);
    if (!c || r.leafIndex >= c.size) return;
    let l = byLog.get(r.logId);
    if (!l) byLog.set(r.logId, (l = []));
    l.push(i);
  });
  for (const [logId, at] of byLog) {
    const c = latest.get(logId)!;
    const hashes = await inclusionProofsOf(store, logId, at.map((i) => records[i]!.leafIndex), c.size);
    at.forEach((i, j) => {
      const r = records[i]!;
      out[i] = { origin: c.origin, leafIndex: r.leafIndex, treeSize: c.size, hashes: hashes[j]!, leafHash: r.leafHash, checkpoint: cosignedNote(c), leaf: storedRecordLeaf(c.origin, r) };
    });
  }
  return out;
}

/** A log's latest checkpoint as clients are served it: the signed note with the witnesses' cosignatures. */
export interface LatestCheckpoint {
  readonly logId: string;
  readonly origin: string;
  readonly size: number;
  readonly note: string;
}

/** The proofs of one store, as the records service's port (src/service/ports.ts RecordProofs) asks. */
export class StoreProofs {
  constructor(private readonly store: RecordStore) {}

  async latest(): Promise<LatestCheckpoint[]> {
    return (await this.store.latestCheckpoints()).map((c) => ({ logId: c.logId, origin: c.origin, size: c.size, note: cosignedNote(c) }));
  }

  consistency(logId: string, size1: number, size2: number): Promise<Buffer[]> {
    return consistencyProofOf(this.store, logId, size1, size2);
  }

  ofRecords(records: readonly LoggedRecord[]): Promise<(RecordInclusion | null)[]> {
    return proofsOfRecords(this.store, records);
  }
}
