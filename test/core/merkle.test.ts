/**
 * RFC 6962 / 9162 Merkle trees: known answers from transparency-dev/merkle (testonly/constants.go and
 * proof/verify_test.go, the Certificate Transparency reference tree of eight leaves), a naive reference
 * implementation of PATH and PROOF for every size up to 50, and corrupted proofs that must fail.
 */
import { describe, expect, it } from 'vitest';
import { CompactRange, type CompletedNode } from '../../src/core/compact-range.js';
import {
  checkConsistency,
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  nodeHash,
  rangeNodes,
  rootFromInclusionProof,
  rootOfLeafHashes,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
  type NodeSource,
} from '../../src/core/merkle.js';

const hd = (s: string) => Buffer.from(s, 'hex');

// testonly.LeafInputs()
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hd);
// testonly.RootHashes(), by tree size 1..8
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hd);
// testonly.NodeHashes(): [level][index]
const NODES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
].map((l) => l.map(hd));
// proof/verify_test.go inclusionProofs: {leaf (1-based), size, proof}
const INCLUSION: [number, number, string[]][] = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [3, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [2, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
// proof/verify_test.go consistencyProofs: {size1, size2, proof}
const CONSISTENCY: [number, number, string[]][] = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

/** Perfect-subtree hashes straight from the leaf hashes: the node source of a store, without a store. */
function sourceOver(leafHashes: readonly Buffer[]): NodeSource {
  return async (ids) =>
    ids.map(({ level, index }) => {
      const lo = index * 2 ** level;
      const hi = lo + 2 ** level;
      if (hi > leafHashes.length) throw new Error(`node ${level}/${index} is not complete in a tree of ${leafHashes.length}`);
      return rootOfLeafHashes(leafHashes.slice(lo, hi));
    });
}

// The naive reference, RFC 9162 §2.1.3.1 and §2.1.4.1 as written, hashing subtrees directly.
function refPath(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = splitPoint(d.length);
  return m < k ? [...refPath(m, d.slice(0, k)), rootOfLeafHashes(d.slice(k))] : [...refPath(m - k, d.slice(k)), rootOfLeafHashes(d.slice(0, k))];
}
function refSubproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [rootOfLeafHashes(d)];
  const k = splitPoint(d.length);
  return m <= k ? [...refSubproof(m, d.slice(0, k), b), rootOfLeafHashes(d.slice(k))] : [...refSubproof(m - k, d.slice(k), false), rootOfLeafHashes(d.slice(0, k))];
}

const hashes = LEAVES.map(leafHash);
const flip = (b: Buffer) => {
  const c = Buffer.from(b);
  c[0]! ^= 8;
  return c;
};

describe('Merkle tree hashing (RFC 6962)', () => {
  it('hashes leaves and nodes with their prefixes, and the empty tree to SHA-256 of nothing', () => {
    expect(hashes).toEqual(NODES[0]);
    expect(nodeHash(hashes[0]!, hashes[1]!)).toEqual(NODES[1]![0]);
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(rootOfLeafHashes([])).toEqual(EMPTY_ROOT);
  });

  it('gives the reference root of every size from 1 to 8', () => {
    for (let n = 1; n <= 8; n++) expect(rootOfLeafHashes(hashes.slice(0, n)).toString('hex'), `size ${n}`).toBe(ROOTS[n - 1]!.toString('hex'));
  });

  it('covers ranges with the largest perfect subtrees', () => {
    expect(rangeNodes(0, 7)).toEqual([{ level: 2, index: 0 }, { level: 1, index: 2 }, { level: 0, index: 6 }]);
    expect(rangeNodes(3, 8)).toEqual([{ level: 0, index: 3 }, { level: 2, index: 1 }]);
    expect(rangeNodes(5, 5)).toEqual([]);
  });
});

describe('inclusion proofs', () => {
  it('match the reference vectors and verify (RFC 9162 §2.1.3.2)', async () => {
    for (const [leaf, size, want] of INCLUSION) {
      const proof = await inclusionProof(leaf - 1, size, sourceOver(hashes.slice(0, size)));
      expect(proof.map((p) => p.toString('hex'))).toEqual(want);
      expect(verifyInclusion(leaf - 1, size, hashes[leaf - 1]!, proof, ROOTS[size - 1]!)).toBe(true);
    }
  });

  it('equal the naive PATH for every leaf of every size up to 50, and verify', async () => {
    const many = Array.from({ length: 50 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    for (let n = 1; n <= 50; n++) {
      const d = many.slice(0, n);
      const root = rootOfLeafHashes(d);
      const source = sourceOver(d);
      for (let m = 0; m < n; m++) {
        const proof = await inclusionProof(m, n, source);
        expect(proof, `leaf ${m} of ${n}`).toEqual(refPath(m, d));
        expect(rootFromInclusionProof(m, n, d[m]!, proof)).toEqual(root);
      }
    }
  });

  it('fail for a forged leaf, a wrong index or size, a wrong root, and any altered proof', () => {
    const [leaf, size, hexes] = INCLUSION[1]!;
    const proof = hexes.map(hd);
    const root = ROOTS[size - 1]!;
    const i = leaf - 1;
    const h = hashes[i]!;
    expect(verifyInclusion(i, size, h, proof, root)).toBe(true);
    expect(verifyInclusion(i, size, leafHash(Buffer.from('forged')), proof, root)).toBe(false);
    expect(verifyInclusion(i, size, Buffer.from('WrongLeaf'), proof, root)).toBe(false);
    for (const j of [i - 1, i + 1, i ^ 2]) expect(verifyInclusion(j, size, h, proof, root), `index ${j}`).toBe(false);
    for (const n of [size * 2, size / 2, i]) expect(verifyInclusion(i, n, h, proof, root), `size ${n}`).toBe(false);
    expect(verifyInclusion(i, size, h, proof, EMPTY_ROOT)).toBe(false);
    expect(verifyInclusion(i, size, h, [...proof, root], root)).toBe(false);
    expect(verifyInclusion(i, size, h, [root, ...proof], root)).toBe(false);
    expect(verifyInclusion(i, size, h, proof.slice(0, -1), root)).toBe(false);
    expect(verifyInclusion(i, size, h, [...proof, Buffer.alloc(0)], root)).toBe(false);
    for (let k = 0; k < proof.length; k++) expect(verifyInclusion(i, size, h, proof.map((p, j) => (j === k ? flip(p) : p)), root)).toBe(false);
    // A single-leaf tree: the proof is empty and the root is the leaf hash.
    expect(verifyInclusion(0, 1, h, [], h)).toBe(true);
    expect(verifyInclusion(0, 0, h, [], h)).toBe(false);
    expect(verifyInclusion(1, 1, h, [], h)).toBe(false);
  });
});

describe('consistency proofs', () => {
  it('match the reference vectors and verify (RFC 9162 §2.1.4.2)', async () => {
    for (const [m, n, want] of CONSISTENCY) {
      const proof = await consistencyProof(m, n, sourceOver(hashes.slice(0, n)));
      expect(proof.map((p) => p.toString('hex')), `${m} → ${n}`).toEqual(want);
      expect(verifyConsistency(m, n, proof, ROOTS[m - 1]!, ROOTS[n - 1]!)).toBe(true);
    }
  });

  it('equal the naive PROOF for every pair of sizes up to 50, and verify', async () => {
    const many = Array.from({ length: 50 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    const roots = Array.from({ length: 51 }, (_, n) => rootOfLeafHashes(many.slice(0, n)));
    const source = sourceOver(many);
    for (let n = 1; n <= 50; n++)
      for (let m = 1; m < n; m++) {
        const proof = await consistencyProof(m, n, source);
        expect(proof, `${m} → ${n}`).toEqual(refSubproof(m, many.slice(0, n), true));
        expect(() => checkConsistency(m, n, proof, roots[m]!, roots[n]!)).not.toThrow();
      }
  });

  it('fail for wrong sizes, wrong or swapped roots, and any altered proof', () => {
    const [m, n, hexes] = CONSISTENCY[1]!;
    const proof = hexes.map(hd);
    const r1 = ROOTS[m - 1]!;
    const r2 = ROOTS[n - 1]!;
    expect(verifyConsistency(m, n, proof, r1, r2)).toBe(true);
    for (const [a, b] of [[m - 1, n], [m + 1, n], [m ^ 2, n], [m, n * 2], [m, n / 2], [n, m]])
      expect(verifyConsistency(a!, b!, proof, r1, r2), `${a} → ${b}`).toBe(false);
    expect(verifyConsistency(m, n, proof, Buffer.from('WrongRoot'), r2)).toBe(false);
    expect(verifyConsistency(m, n, proof, r1, Buffer.from('WrongRoot'))).toBe(false);
    expect(verifyConsistency(m, n, proof, r2, r1)).toBe(false);
    expect(verifyConsistency(m, n, [], r1, r2)).toBe(false);
    for (const extra of [Buffer.alloc(0), r1, r2]) {
      expect(verifyConsistency(m, n, [...proof, extra], r1, r2)).toBe(false);
      expect(verifyConsistency(m, n, [extra, ...proof], r1, r2)).toBe(false);
    }
    expect(verifyConsistency(m, n, [proof[0]!, ...proof], r1, r2)).toBe(false);
    expect(verifyConsistency(m, n, proof.slice(0, -1), r1, r2)).toBe(false);
    for (let k = 0; k < proof.length; k++) expect(verifyConsistency(m, n, proof.map((p, j) => (j === k ? flip(p) : p)), r1, r2)).toBe(false);
  });

  it('treat the trivial cases as transparency-dev/merkle does', () => {
    const a = Buffer.from('don\'t care 1');
    const b = Buffer.from('don\'t care 2');
    expect(verifyConsistency(0, 0, [], a, a)).toBe(true);
    expect(verifyConsistency(0, 1, [], a, b)).toBe(true);
    expect(verifyConsistency(1, 1, [], b, b)).toBe(true);
    expect(verifyConsistency(0, 0, [], a, b)).toBe(false);
    expect(verifyConsistency(1, 1, [], a, b)).toBe(false);
    expect(verifyConsistency(1, 0, [], a, b)).toBe(false);
    expect(verifyConsistency(2, 1, [], a, b)).toBe(false);
    expect(verifyConsistency(1, 2, [], a, b)).toBe(false);
    expect(verifyConsistency(0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)).toBe(false);
    expect(verifyConsistency(1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)).toBe(false);
    // A fork: one size, two roots.
    expect(() => checkConsistency(5, 5, [], ROOTS[4]!, ROOTS[3]!)).toThrow(/forked/);
  });
});

describe('the compact range', () => {
  it('gives every root and the reference edge, and completes each perfect node once', () => {
    const r = CompactRange.empty();
    const completed: CompletedNode[] = [];
    expect(r.root()).toEqual(EMPTY_ROOT);
    hashes.forEach((h, i) => {
      r.append(h, (n) => void completed.push(n));
      expect(r.size).toBe(i + 1);
      expect(r.root().toString('hex')).toBe(ROOTS[i]!.toString('hex'));
    });
    // testonly.CompactTrees()[8]: one node at the top.
    expect(r.hashes).toEqual([NODES[3]![0]]);
    expect(completed.map((n) => [n.level, n.index])).toEqual([
      [0, 0], [0, 1], [1, 0], [0, 2], [0, 3], [1, 1], [2, 0], [0, 4], [0, 5], [1, 2], [0, 6], [0, 7], [1, 3], [2, 1], [3, 0],
    ]);
    for (const n of completed) expect(n.hash, `${n.level}/${n.index}`).toEqual(NODES[n.level]![n.index]);
  });

  it('resumes from the stored edge nodes of any size and goes on as if never stopped', async () => {
    const many = Array.from({ length: 300 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    const source = sourceOver(many);
    for (const stop of [0, 1, 2, 7, 64, 100, 255, 256, 299]) {
      const resumed = CompactRange.fromNodes(stop, await source(CompactRange.nodesFor(stop)));
      for (const h of many.slice(stop)) resumed.append(h);
      expect(resumed.root(), `resumed at ${stop}`).toEqual(rootOfLeafHashes(many));
    }
    expect(() => CompactRange.fromNodes(7, [hashes[0]!])).toThrow(/3 edge nodes/);
  });

  it('counts past 2^32 leaves without 32-bit arithmetic', () => {
    const size = 2 ** 33 + 5;
    const edge = CompactRange.nodesFor(size);
    expect(edge).toEqual([{ level: 33, index: 0 }, { level: 2, index: 2 ** 31 }, { level: 0, index: 2 ** 33 + 4 }]);
    const r = CompactRange.fromNodes(size, edge.map((_, i) => hashes[i]!));
    const seen: [number, number][] = [];
    r.append(hashes[3]!, (n) => void seen.push([n.level, n.index]));
    expect(seen).toEqual([[0, 2 ** 33 + 5], [1, 2 ** 32 + 2]]);
    expect(r.size).toBe(size + 1);
  });
});
