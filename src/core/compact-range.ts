/**
 * The right edge of a growing Merkle tree: for a tree of n leaves, the hashes of the perfect subtrees that
 * n's binary digits describe (at most 64 of them), largest first. Appending a leaf merges equal subtrees and
 * yields every perfect node that becomes complete, so a log writer can store each node once, and it knows the
 * root of every new size without reading anything back. A restarted writer rebuilds it from the stored nodes
 * of `rangeNodes(0, n)`.
 */
import { EMPTY_ROOT, HASH_SIZE, nodeHash, rangeNodes, type NodeId } from './merkle.js';

/** A node that became complete while appending: level 0 is the leaf itself. */
export interface CompletedNode extends NodeId {
  readonly hash: Buffer;
}

export class CompactRange {
  #size: number;
  /** Hashes of the perfect subtrees covering [0, size), largest (leftmost) first. */
  #hashes: Buffer[];

  private constructor(size: number, hashes: Buffer[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** The nodes whose hashes `fromNodes` needs for a tree of `size` leaves. */
  static nodesFor(size: number): NodeId[] {
    return rangeNodes(0, size);
  }

  /** A range for a tree of `size` leaves from the hashes of `CompactRange.nodesFor(size)`, in that order. */
  static fromNodes(size: number, hashes: readonly Uint8Array[]): CompactRange {
    const want = rangeNodes(0, size).length;
    if (hashes.length !== want) throw new RangeError(`a tree of ${size} leaves has ${want} edge nodes, not ${hashes.length}`);
    for (const h of hashes) if (h.length !== HASH_SIZE) throw new RangeError('edge node hashes are 32 bytes');
    return new CompactRange(size, hashes.map((h) => Buffer.from(h)));
  }

  get size(): number {
    return this.#size;
  }

  /** The edge hashes, largest subtree first (what `fromNodes` takes back). */
  get hashes(): readonly Buffer[] {
    return this.#hashes;
  }

  clone(): CompactRange {
    return new CompactRange(this.#size, [...this.#hashes]);
  }

  /** Appends one leaf hash; `completed` is told of the leaf and of every node it completes, lowest first. */
  append(leaf: Uint8Array, completed?: (n: CompletedNode) => void): void {
    if (leaf.length !== HASH_SIZE) throw new RangeError('a leaf hash is 32 bytes');
    let h: Buffer = Buffer.from(leaf);
    let index = this.#size;
    let level = 0;
    completed?.({ level, index, hash: h });
    // Each trailing 1 bit of the old size is a subtree of the same size on the left to merge with.
    let n = this.#size;
    while (n % 2 === 1) {
      h = nodeHash(this.#hashes.pop()!, h);
      n = Math.floor(n / 2);
      index = Math.floor(index / 2);
      level++;
      completed?.({ level, index, hash: h });
    }
    this.#hashes.push(h);
    this.#size++;
  }

  /** The tree's root hash (RFC 6962 MTH of all leaves so far). */
  root(): Buffer {
    if (this.#hashes.length === 0) return Buffer.from(EMPTY_ROOT);
    let h = this.#hashes[this.#hashes.length - 1]!;
    for (let i = this.#hashes.length - 2; i >= 0; i--) h = nodeHash(this.#hashes[i]!, h);
    return h;
  }
}
