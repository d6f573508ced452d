/**
 * Verification of one chain of access records against its seals. Reports the first problem, naming the record
 * where it shows and what kind of tampering explains it.
 */
import { genesisHash, recordHash, sealIsValid, subjectsDigest, type ChainedRecord, type ChainLink, type Seal } from './access-record.js';
import type { KeyObject } from 'node:crypto';

export type ProblemKind = 'changed' | 'deleted' | 'inserted' | 'reordered' | 'bad-seal' | 'unsealed';

export interface ChainProblem {
  readonly chainId: string;
  readonly kind: ProblemKind;
  /** Sequence number and record id where the problem shows (the record after a gap, for deletions). */
  readonly seq: number | null;
  readonly recordId: string | null;
  readonly detail: string;
}

export interface ChainReport {
  readonly chainId: string;
  readonly records: number;
  readonly seals: number;
  readonly problem: ChainProblem | null;
}

/**
 * `rows` in ascending seq order as stored, `seals` in ascending lastSeq order; `keys` maps key ids to Ed25519
 * public keys; `subjects` holds the stored subject keys of each batch record, by record id.
 */
export function verifyChain(
  chainId: string,
  rows: readonly ChainedRecord[],
  seals: readonly Seal[],
  keys: ReadonlyMap<string, KeyObject>,
  subjects: ReadonlyMap<string, readonly string[]> = new Map(),
  links: readonly ChainLink[] = [],
): ChainReport {
  const report = (problem: ChainProblem | null): ChainReport => ({ chainId, records: rows.length, seals: seals.length, problem });
  if (rows.length === 0 && links.length > 0)
    return report({ chainId, kind: 'deleted', seq: 1, recordId: null, detail: 'the chain\'s records are missing; only its links to earlier chains remain' });
  const at = (kind: ProblemKind, r: ChainedRecord | undefined, detail: string) =>
    report({ chainId, kind, seq: r?.seq ?? null, recordId: r?.recordId ?? null, detail });

  const laterHashes = new Map<string, number>();
  rows.forEach((r, i) => laterHashes.set(r.hash, i));

  let prevHash = genesisHash(chainId, links);
  let prev: ChainedRecord | undefined;
  let expectedSeq = 1;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r.chainId !== chainId) return at('inserted', r, 'record of another chain');
    if (r.prevHash !== prevHash) {
      if (prev && prev.prevHash === r.prevHash) return at('inserted', prev, 'this record was put between two linked records');
      const j = laterHashes.get(r.prevHash);
      if (j !== undefined && j > i) return at('reordered', r, 'this record links to a record stored after it');
      if (r.seq !== expectedSeq) return at('deleted', r, `records ${expectedSeq}..${r.seq - 1} are missing before this one`);
      if (prev) return at('changed', prev, 'this record was rewritten with a new hash');
      return at('deleted', r, 'records are missing before this one');
    }
    if (recordHash(r.prevHash, r) !== r.hash) return at('changed', r, 'the stored fields do not match the record hash');
    if (r.subjectsDigest !== null && subjectsDigest(subjects.get(r.recordId) ?? []) !== r.subjectsDigest)
      return at('changed', r, 'the persons stored for this batch record do not match its hash');
    if (r.subjectsDigest === null && subjects.has(r.recordId)) return at('inserted', r, 'persons were added to a record of one person');
    if (r.seq !== expectedSeq) {
      if (r.seq > expectedSeq) return at('deleted', r, `sequence numbers ${expectedSeq}..${r.seq - 1} are missing`);
      return at('reordered', r, 'sequence numbers are out of order');
    }
    prevHash = r.hash;
    prev = r;
    expectedSeq++;
  }

  const bySeq = new Map<number, ChainedRecord>();
  for (const r of rows) bySeq.set(r.seq, r);
  let lastSealed = 0;
  for (const s of seals) {
    const key = keys.get(s.keyId);
    if (s.chainId !== chainId || !key || !sealIsValid(s, key)) return at('bad-seal', bySeq.get(s.lastSeq), `the seal over record ${s.lastSeq} has a bad signature`);
    const r = bySeq.get(s.lastSeq);
    if (!r) return report({ chainId, kind: 'deleted', seq: s.lastSeq, recordId: null, detail: `sealed record ${s.lastSeq} is missing` });
    if (r.hash !== s.headHash) {
      const first = rows.find((x) => x.seq > lastSealed);
      return at('changed', first, `records ${lastSealed + 1}..${s.lastSeq} were rewritten: the chain head does not match its seal`);
    }
    lastSealed = Math.max(lastSealed, s.lastSeq);
  }
  const tail = rows.find((r) => r.seq > lastSealed);
  if (tail) return at('unsealed', tail, 'records after the last seal: added outside the gateway');
  return report(null);
}

/** What a later chain (`by`) committed to about a predecessor: its record at `lastSeq` had `headHash`. */
export interface LinkTo {
  readonly by: string;
  readonly lastSeq: number;
  readonly headHash: string;
}

/**
 * Checks what later chains committed to about `chainId` against its stored rows (ascending seq; empty when the
 * chain is gone): each linked record must be stored with the linked hash. Returns the first problem.
 */
export function verifyLinksTo(chainId: string, rows: readonly ChainedRecord[], links: readonly LinkTo[]): ChainProblem | null {
  if (links.length === 0) return null;
  const hashes = new Map<number, { hash: string; recordId: string }>();
  for (const r of rows) hashes.set(r.seq, { hash: r.hash, recordId: r.recordId });
  for (const l of links) {
    const by = `chain ${l.by}, started later, committed to record ${l.lastSeq} of this chain`;
    const r = hashes.get(l.lastSeq);
    if (rows.length === 0) return { chainId, kind: 'deleted', seq: l.lastSeq, recordId: null, detail: `${by}; the whole chain is missing` };
    if (!r) return { chainId, kind: 'deleted', seq: l.lastSeq, recordId: null, detail: `${by}; that record is missing` };
    if (r.hash !== l.headHash) return { chainId, kind: 'changed', seq: l.lastSeq, recordId: r.recordId, detail: `${by}; its hash differs from the one committed to` };
  }
  return null;
}
