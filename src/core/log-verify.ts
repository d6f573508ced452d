/**
 * Verification of one transparency log from its stored records, streamed in leaf order: each record must hash
 * to its stored leaf hash at its position, the tree rebuilt from those leaves must have the root of every
 * checkpoint the log signed (and of every checkpoint saved outside the store), and nothing may lie beyond the
 * log's size. Reports every problem (up to a limit, counting the rest), naming the record where each shows and
 * the kind of tampering that explains it; after a gap or a root that does not match, the tree can no longer be
 * rebuilt, so later roots are not checked, but every later record still is. Memory stays bounded: a compact
 * range, not the tree, is kept.
 *
 * Verification may start at a size other than 0, from a compact range known good at that size: the frontier of
 * a purge (records below it were deleted by a signed purge), or the tree at a checkpoint verified earlier
 * (incremental verification). The caller checks that range against a signed root before handing it over.
 */
import { storedRecordLeafHash, type LoggedRecord } from './access-record.js';
import { CompactRange, type CompletedNode } from './compact-range.js';
import { EMPTY_ROOT } from './merkle.js';
import { subjectsCommitment } from './record-leaf.js';

export type ProblemKind = 'changed' | 'deleted' | 'inserted' | 'bad-checkpoint' | 'bad-purge';

export interface LogProblem {
  readonly logId: string;
  readonly kind: ProblemKind;
  /** The leaf where the problem shows (the record after a gap, for deletions), or null. */
  readonly leafIndex: number | null;
  readonly recordId: string | null;
  readonly detail: string;
}

export interface LogReport {
  readonly logId: string;
  readonly origin: string;
  /** Records read and checked. */
  readonly records: number;
  /** The log's size as stored. */
  readonly treeSize: number;
  /** Checkpoints checked: the log's own and those saved outside the store. */
  readonly checkpoints: number;
  /** Size of the latest checkpoint the log signed (0: none). */
  readonly signedSize: number;
  /**
   * Leaves after the latest signed checkpoint: normal for up to one checkpoint interval while the gateway
   * runs, and after a crash until the restarted writer signs them; vouched for only by the store until then.
   */
  readonly unsigned: number;
  /** The first problem found, or null. */
  readonly problem: LogProblem | null;
  /** The problems found, in the order found, at most the limit given (`problemCount` counts them all). */
  readonly problems: readonly LogProblem[];
  readonly problemCount: number;
  /** The leaf verification started at: 0, a purge's frontier, or a checkpoint verified earlier. */
  readonly from: number;
  /** Leaves [0, purgedBelow) were removed by a signed purge (0: none). */
  readonly purgedBelow: number;
}

/** Where verification of a log starts: a compact range checked against a signed root at its size. */
export interface VerifyStart {
  readonly range: CompactRange;
  readonly purgedBelow: number;
}

/** A tree size and root the rebuilt tree must match: signed by the log, or kept outside the store. */
export interface RootToMatch {
  readonly size: number;
  readonly rootHash: Buffer;
  readonly source: 'log' | 'saved';
}

export class LogVerifier {
  readonly #logId: string;
  readonly #origin: string;
  readonly #treeSize: number;
  readonly #targets: RootToMatch[];
  readonly #onNode: ((n: CompletedNode) => void) | undefined;
  readonly #maxProblems: number;
  readonly #from: number;
  readonly #purgedBelow: number;
  /** The next leaf index expected. */
  #next: number;
  #range: CompactRange;
  /** After a gap or a mismatched root the tree cannot be rebuilt: later roots and nodes are not checked. */
  #broken = false;
  #records = 0;
  /** The first leaf after the last matched root: where a rewrite found by a root starts. */
  #matchedUpTo: number;
  readonly #problems: LogProblem[] = [];
  #problemCount = 0;

  constructor(o: { logId: string; origin: string; treeSize: number; roots: readonly RootToMatch[]; onNode?: (n: CompletedNode) => void; start?: VerifyStart; maxProblems?: number }) {
    this.#logId = o.logId;
    this.#origin = o.origin;
    this.#treeSize = o.treeSize;
    this.#onNode = o.onNode;
    this.#maxProblems = Math.max(1, o.maxProblems ?? 100);
    this.#range = o.start ? o.start.range.clone() : CompactRange.empty();
    this.#from = this.#next = this.#matchedUpTo = this.#range.size;
    this.#purgedBelow = o.start?.purgedBelow ?? 0;
    this.#targets = [...o.roots].sort((a, b) => a.size - b.size);
    for (const t of this.#targets) if (t.size === 0 && !t.rootHash.equals(EMPTY_ROOT)) this.#fail('bad-checkpoint', null, null, 'a checkpoint of the empty tree with a root other than SHA-256 of nothing');
    // Roots at or below the start were checked by the caller (the start range's own root) or cannot be.
    while (this.#targets[0] && this.#targets[0].size <= this.#from) {
      const t = this.#targets.shift()!;
      if (t.size === this.#from && t.size > 0 && !this.#range.root().equals(t.rootHash))
        this.#fail('changed', null, null, `the tree of ${t.size} leaves where verification starts does not match ${t.source === 'log' ? 'the checkpoint the log signed at that size' : 'a checkpoint saved outside the store'}`);
    }
  }

  /** The first problem found, or null. */
  get problem(): LogProblem | null {
    return this.#problems[0] ?? null;
  }

  get problemCount(): number {
    return this.#problemCount;
  }

  /** The rebuilt tree so far (null once it could not be rebuilt). */
  get range(): CompactRange | null {
    return this.#broken ? null : this.#range;
  }

  #fail(kind: ProblemKind, leafIndex: number | null, recordId: string | null, detail: string): void {
    this.#problemCount++;
    if (this.#problems.length < this.#maxProblems) this.#problems.push({ logId: this.#logId, kind, leafIndex, recordId, detail });
  }

  /** Reports a problem found outside the record stream (a bad checkpoint signature, a stored node). */
  fail(kind: ProblemKind, leafIndex: number | null, detail: string): void {
    this.#fail(kind, leafIndex, null, detail);
  }

  /**
   * The next record in leaf order, with the commitment to the persons stored for it in the side table (none
   * stored: undefined), and whether persons are stored for a record of one person (which no writer does).
   */
  add(r: LoggedRecord, storedPersons: Buffer | undefined, strayPersons = false): void {
    this.#records++;
    const at = (kind: ProblemKind, detail: string) => this.#fail(kind, r.leafIndex, r.recordId, detail);
    if (r.logId !== this.#logId) return at('inserted', 'a record of another log');
    if (r.leafIndex < this.#next) return at('inserted', 'a second record at a position already taken');
    if (r.leafIndex > this.#next) {
      at('deleted', `leaves ${this.#next}..${r.leafIndex - 1} are missing before this record`);
      // Without the missing leaves the tree cannot be rebuilt; the records after the gap are still checked.
      this.#broken = true;
      this.#next = r.leafIndex;
    }
    this.#next++;
    const h = storedRecordLeafHash(this.#origin, r);
    if (!h.equals(r.leafHash)) at('changed', 'the stored fields do not match the leaf hash at this position');
    if (r.subject === '') {
      const persons = storedPersons ?? subjectsCommitment(r.recordId, []);
      if (!r.personsCommitment || !persons.equals(r.personsCommitment)) at('changed', 'the persons stored for this batch record are not the ones its leaf commits to');
    } else if (strayPersons) at('inserted', 'persons were added to a record of one person');
    if (this.#broken) return;
    // The stored leaf hash goes into the tree: a record whose fields alone were changed is reported above, and
    // the tree (and every later record's place in it) is still checked against the signed roots.
    this.#range.append(r.leafHash, this.#onNode);
    while (this.#targets[0] && this.#targets[0].size === this.#range.size) {
      const t = this.#targets.shift()!;
      if (!this.#range.root().equals(t.rootHash)) {
        const first = this.#matchedUpTo;
        const whose = t.source === 'log' ? 'the checkpoint the log signed at that size' : 'a checkpoint saved outside the store';
        this.#broken = true;
        return this.#fail('changed', first, null, `leaves ${first}..${t.size - 1} were rewritten: the tree of ${t.size} leaves does not match ${whose}`);
      }
      this.#matchedUpTo = t.size;
    }
  }

  /** After the last record: `maxLeafIndex` is the highest leaf index stored for the log (null: none). */
  finish(maxLeafIndex: number | null, checkpoints: number, signedSize: number): LogReport {
    const cut = this.#targets.find((t) => t.size > this.#next);
    if (cut) {
      const whose = cut.source === 'log' ? 'the log signed a checkpoint of' : 'a checkpoint saved outside the store has';
      this.#fail('deleted', this.#next, null, `${whose} ${cut.size} leaves; only ${this.#next} remain: records were cut off`);
    } else if (this.#next < this.#treeSize) {
      this.#fail('deleted', this.#next, null, `leaves ${this.#next}..${this.#treeSize - 1} are missing (the log's size is ${this.#treeSize})`);
    }
    if (maxLeafIndex !== null && maxLeafIndex >= this.#treeSize && this.#next <= this.#treeSize) {
      this.#fail('inserted', this.#treeSize, null, `records beyond the log's size of ${this.#treeSize}: added outside the gateway`);
    }
    return {
      logId: this.#logId,
      origin: this.#origin,
      records: this.#records,
      treeSize: this.#treeSize,
      checkpoints,
      signedSize,
      unsigned: Math.max(0, this.#treeSize - signedSize),
      problem: this.problem,
      problems: this.#problems,
      problemCount: this.#problemCount,
      from: this.#from,
      purgedBelow: this.#purgedBelow,
    };
  }
}
