/**
 * Access records (情報提供等記録, 番号法 §23) and their hash chain.
 *
 * Every record links to the one before it in its chain: hash = SHA-256(domain ‖ prev_hash ‖ canonical fields).
 * Each replica writes its own chain (chain id), and each committed batch is sealed by an Ed25519 signature
 * over (chain id, last sequence number, chain head). Changing, deleting, inserting or reordering records breaks
 * a link or a seal; rewriting all later hashes too still breaks the next seal, which needs the signing key.
 *
 * The sequence number is deliberately outside the hash: order is protected by the links, and keeping the
 * number out lets verification tell a renumbered reordering from an altered record.
 */
import { createHash, verify, type KeyObject } from 'node:crypto';

/** Mirrors linkage.v1.Outcome. */
export const Outcome = {
  ISSUED: 1,
  PROVIDED: 2,
  DENIED: 3,
  NOT_FOUND: 4,
  FAILED: 5,
  RECORDS_READ: 6,
  BINDING_REPORTED: 7,
} as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export interface AccessRecordDraft {
  readonly recordId: string;
  /** Subject key: neither the personal number nor any agency's code (see subject-key.ts). */
  readonly subject: string;
  /** Milliseconds since the epoch. */
  readonly requestedAt: number;
  readonly providedAt: number | null;
  readonly requester: string;
  readonly provider: string;
  readonly procedure: string;
  readonly legalBasisRow: string;
  readonly item: string;
  readonly outcome: Outcome;
  readonly nonDisclosable: boolean;
  /**
   * A batch record (bulk issuance) stands for many persons: their subject keys, kept in a side table, and
   * `subject` is empty. The record's hash covers their digest, so a subject row removed or added shows.
   */
  readonly subjects?: readonly string[];
}

export interface ChainedRecord extends Omit<AccessRecordDraft, 'subjects'> {
  readonly chainId: string;
  readonly seq: number;
  /** SHA-256 (hex) of the sorted subject keys of a batch record; null for a record of one person. */
  readonly subjectsDigest: string | null;
  readonly prevHash: string;
  readonly hash: string;
}

/** A chained record with the subject keys of a batch record, as the writer hands it to a store. */
export interface ChainedRecordWithSubjects extends ChainedRecord {
  readonly subjects?: readonly string[];
}

export function subjectsDigest(subjects: readonly string[]): string {
  return createHash('sha256').update([...subjects].sort().join('\n')).digest('hex');
}

export interface Seal {
  readonly chainId: string;
  /** The sequence number of the last record the seal covers. */
  readonly lastSeq: number;
  readonly headHash: string;
  /** Base64 Ed25519 signature. */
  readonly signature: string;
  readonly keyId: string;
  readonly sealedAt: number;
}

/**
 * A new chain's commitment to a chain already in the store when it started: that chain's last sequence
 * number and hash at the time. The links are part of the new chain's genesis hash, so the new chain vouches
 * for its predecessors up to those heads: deleting an older chain, or records of it up to its linked head, is
 * caught by verification as long as a later chain exists.
 */
export interface ChainLink {
  readonly predecessor: string;
  readonly lastSeq: number;
  readonly headHash: string;
}

/** The hash the first record of a chain links to: the chain id and its links (none: the v1 genesis). */
export function genesisHash(chainId: string, links: readonly ChainLink[] = []): string {
  const h = createHash('sha256').update('linkgw-chain-genesis-v1\n').update(chainId);
  if (links.length > 0) {
    const sorted = [...links].sort((a, b) => (a.predecessor < b.predecessor ? -1 : a.predecessor > b.predecessor ? 1 : 0));
    h.update('\nlinks\n').update(JSON.stringify(sorted.map((l) => [l.predecessor, l.lastSeq, l.headHash])));
  }
  return h.digest('hex');
}

export function recordHash(prevHash: string, r: Omit<AccessRecordDraft, 'subjects'> & { chainId: string; subjectsDigest: string | null }): string {
  const canonical = JSON.stringify([
    r.chainId,
    r.recordId,
    r.subject,
    r.requestedAt,
    r.providedAt,
    r.requester,
    r.provider,
    r.procedure,
    r.legalBasisRow,
    r.item,
    r.outcome,
    r.nonDisclosable,
    r.subjectsDigest,
  ]);
  return createHash('sha256').update('linkgw-record-v1\n').update(prevHash).update('\n').update(canonical).digest('hex');
}

/** Links drafts onto a chain whose head is (`lastSeq`, `headHash`). */
export function chain(chainId: string, lastSeq: number, headHash: string, drafts: readonly AccessRecordDraft[]): ChainedRecordWithSubjects[] {
  const out: ChainedRecordWithSubjects[] = [];
  let prev = headHash;
  let seq = lastSeq;
  for (const d of drafts) {
    const r = { ...d, chainId, seq: ++seq, subjectsDigest: d.subjects ? subjectsDigest(d.subjects) : null, prevHash: prev, hash: '' };
    r.hash = recordHash(prev, r);
    prev = r.hash;
    out.push(r);
  }
  return out;
}

/** The bytes a seal signs: the chain, its last sequence number and its head hash. */
export function sealMessage(chainId: string, lastSeq: number, headHash: string): Buffer {
  return Buffer.from(`linkgw-seal-v1\n${chainId}\n${lastSeq}\n${headHash}`, 'utf8');
}

/** A seal from a signature over `sealMessage(chainId, lastSeq, headHash)`. */
export function sealOf(chainId: string, lastSeq: number, headHash: string, signature: Uint8Array, keyId: string, now: number): Seal {
  return { chainId, lastSeq, headHash, signature: Buffer.from(signature).toString('base64'), keyId, sealedAt: now };
}

export function sealIsValid(s: Seal, publicKey: KeyObject): boolean {
  try {
    return verify(null, sealMessage(s.chainId, s.lastSeq, s.headHash), publicKey, Buffer.from(s.signature, 'base64'));
  } catch {
    return false;
  }
}
