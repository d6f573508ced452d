/**
 * Verification of one transparency log from its stored records, streamed in leaf order: each record must hash
 * to its stored leaf hash at its position, the tree rebuilt from those leaves must have the root of every
 * checkpoint the log signed (and of every checkpoint saved outside the store), and nothing may lie beyond the
 * log's size. Reports the first problem, naming the record where it shows and the kind of tampering that
 * explains it. Memory stays bounded: a compact range, not the tree, is kept.
 */
import { storedRecordLeafHash, type LoggedRecord } from './access-record.js';
import { CompactRange, type CompletedNode } from './compact-range.js';
import { EMPTY_ROOT } from './merkle.js';
import { subjectsCommitment } from './record-leaf.js';

export type ProblemKind = 'changed' | 'deleted' | 'inserted' | 'bad-checkpoint';

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
  readonly problem: LogProblem | null;
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
  #next = 0;
  #range = CompactRange.empty();
  #records = 0;
  /** The first leaf after the last matched root: where a rewrite found by a root starts. */
  #matchedUpTo = 0;
  #problem: LogProblem | null = null;

  constructor(o: { logId: string; origin: string; treeSize: number; roots: readonly RootToMatch[]; onNode?: (n: CompletedNode) => void }) {
    this.#logId = o.logId;
    this.#origin = o.origin;
    this.#treeSize = o.treeSize;
    this.#onNode = o.onNode;
    this.#targets = [...o.roots].sort((a, b) => a.size - b.size);
    for (const t of this.#targets) if (t.size === 0 && !t.rootHash.equals(EMPTY_ROOT)) this.#fail('bad-checkpoint', null, null, 'a checkpoint of the empty tree with a root other than SHA-256 of nothing');
    while (this.#targets[0]?.size === 0) this.#targets.shift();
  }

  get problem(): LogProblem | null {
    return this.#problem;
  }

  #fail(kind: ProblemKind, leafIndex: number | null, recordId: string | null, detail: string): void {
    this.#problem ??= { logId: this.#logId, kind, leafIndex, recordId, detail };
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
    if (this.#problem) return;
    const at = (kind: ProblemKind, detail: string) => this.#fail(kind, r.leafIndex, r.recordId, detail);
    if (r.logId !== this.#logId) return at('inserted', 'a record of another log');
    if (r.leafIndex !== this.#next) {
      if (r.leafIndex > this.#next) return at('deleted', `leaves ${this.#next}..${r.leafIndex - 1} are missing before this record`);
      return at('inserted', 'a second record at a position already taken');
    }
    const h = storedRecordLeafHash(this.#origin, r);
    if (!h.equals(r.leafHash)) return at('changed', 'the stored fields do not match the leaf hash at this position');
    if (r.subject === '') {
      const persons = storedPersons ?? subjectsCommitment(r.recordId, []);
      if (!r.personsCommitment || !persons.equals(r.personsCommitment)) return at('changed', 'the persons stored for this batch record are not the ones its leaf commits to');
    } else if (strayPersons) return at('inserted', 'persons were added to a record of one person');
    this.#range.append(h, this.#onNode);
    this.#next++;
    while (this.#targets[0] && this.#targets[0].size === this.#range.size) {
      const t = this.#targets.shift()!;
      if (!this.#range.root().equals(t.rootHash)) {
        const first = this.#matchedUpTo;
        const whose = t.source === 'log' ? 'the checkpoint the log signed at that size' : 'a checkpoint saved outside the store';
        return this.#fail('changed', first, null, `leaves ${first}..${t.size - 1} were rewritten: the tree of ${t.size} leaves does not match ${whose}`);
      }
      this.#matchedUpTo = t.size;
    }
  }

  /** After the last record: `maxLeafIndex` is the highest leaf index stored for the log (null: none). */
  finish(maxLeafIndex: number | null, checkpoints: number, signedSize: number): LogReport {
    if (!this.#problem) {
      const cut = this.#targets.find((t) => t.size > this.#range.size);
      if (cut) {
        const whose = cut.source === 'log' ? 'the log signed a checkpoint of' : 'a checkpoint saved outside the store has';
        this.#fail('deleted', this.#range.size, null, `${whose} ${cut.size} leaves; only ${this.#range.size} remain: records were cut off`);
      } else if (this.#range.size < this.#treeSize) {
        this.#fail('deleted', this.#range.size, null, `leaves ${this.#range.size}..${this.#treeSize - 1} are missing (the log's size is ${this.#treeSize})`);
      } else if (maxLeafIndex !== null && maxLeafIndex >= this.#treeSize) {
        this.#fail('inserted', this.#treeSize, null, `records beyond the log's size of ${this.#treeSize}: added outside the gateway`);
      }
    }
    return {
      logId: this.#logId,
      origin: this.#origin,
      records: this.#records,
      treeSize: this.#treeSize,
      checkpoints,
      signedSize,
      unsigned: Math.max(0, this.#treeSize - signedSize),
      problem: this.#problem,
    };
  }
}
