/**
 * The persons of batch records as verification and purge read them, whichever store: a batch record's run is the
 * truth, and the person index (record_subjects) must agree with it (ADR 0104). Written once for both backends.
 */
import { isRun, runCommitment, runLength } from '../core/persons-run.js';
import type { RecordPersons } from './record-store.js';

/** A stored run's commitment; a run that is not sorted and distinct was altered, and commits to nothing it claims. */
export function storedRunCommitment(recordId: string, persons: Uint8Array): Buffer {
  return isRun(persons) ? runCommitment(recordId, persons) : Buffer.alloc(32);
}

/**
 * The persons of a range of leaves for verification: each run's commitment (the truth), unless the index
 * disagrees with it — a run merged (below the frontier) whose index rows are other persons, or a run not merged
 * whose persons are in the index already — then a commitment to nothing a leaf can hold (zeros), so that verify
 * reports the record's persons as changed whichever of the two was altered. Records without a run keep what the
 * index holds (stores written before runs, or stray rows).
 */
export function mergePersons(indexed: Map<number, RecordPersons>, runs: Iterable<{ leaf_index: number | string; record_id: string; persons: Uint8Array; own: string | null }>, below: number): Map<number, RecordPersons> {
  for (const r of runs) {
    const fromRun: RecordPersons = { recordId: r.record_id, commitment: storedRunCommitment(r.record_id, r.persons), stray: (r.own ?? '') !== '', count: runLength(r.persons) };
    const leaf = Number(r.leaf_index);
    const ix = indexed.get(leaf);
    const agrees = fromRun.count > 0 && leaf < below ? ix !== undefined && ix.commitment.equals(fromRun.commitment) : ix === undefined;
    indexed.set(leaf, agrees ? fromRun : { ...fromRun, commitment: Buffer.alloc(32), count: ix?.count ?? 0 });
  }
  return indexed;
}

