/**
 * `linkgw records purge --before TIME` (issue 12 item 6, docs/adr/0103-retention.md): per log, the longest
 * prefix of leaves [0, N) whose records were all requested before TIME is removed, and the removal itself is
 * recorded as a `log_purges` row carrying a purge statement signed by the log's key (src/core/purge-note.ts)
 * and the compact range at N, so that `linkgw records verify` starts the log there and still fails on any
 * record deleted any other way.
 *
 * N is a multiple of 8 (2^LOWEST_STORED_LEVEL) and at most the size of the log's latest signed checkpoint: every
 * node a proof of a kept record needs is then a stored node or lies among the kept leaves, and only leaves
 * the log signed are purged. Before it signs, the purge verifies the leaves it removes (from the previous
 * purge's frontier to N, records, persons and the signed roots among them) and the consistency of the tree at
 * N with the latest signed checkpoint: a purge never launders tampering. Everything is read in one snapshot;
 * the deletion is one transaction (the purge row, then one DELETE per table).
 */
import type { KeyObject } from 'node:crypto';
import { openCheckpoint } from '../core/checkpoint.js';
import { CompactRange } from '../core/compact-range.js';
import { LogVerifier, type RootToMatch } from '../core/log-verify.js';
import { checkConsistency, ProofError } from '../core/merkle.js';
import { signPurge } from '../core/purge-note.js';
import { ed25519NoteSigner, NoteError } from '../core/signed-note.js';
import type { Signer } from '../keys/signer.js';
import { consistencyProofOf } from './log-proofs.js';
import type { FinishedPurge, NewPurge, RecordStore, SnapshotReader } from './record-store.js';
import { LOWEST_STORED_LEVEL, type LogInfo } from './schema.js';
import { logVerifiers, openPurges } from './verify-store.js';

/** What a purge did (or, with `dryRun`, would do) to one log. */
export interface PurgeLogResult {
  readonly logId: string;
  readonly origin: string;
  /** Leaves below this were purged before (0: never). */
  readonly fromLeaf: number;
  /** Leaves below this are purged after this run (the same as fromLeaf: nothing to purge). */
  readonly belowLeaf: number;
  /** Records (and persons of batch records) deleted; with dryRun, the records that would be. */
  readonly records: number;
  readonly persons: number;
  readonly purged: boolean;
  /** Why nothing was purged, when nothing was. */
  readonly reason?: string;
}

export interface PurgeOptions {
  /** Records requested before this time (ms since the epoch) are purged. */
  readonly before: number;
  readonly now?: number;
  readonly dryRun?: boolean;
  readonly pageSize?: number;
  /** Told what the store's finishing step did (PostgreSQL: monthly partitions dropped). */
  readonly finished?: (f: FinishedPurge) => void;
}

const BLOCK = 2 ** LOWEST_STORED_LEVEL;

type Plan = { result: PurgeLogResult; purge?: NewPurge };

async function planLog(r: SnapshotReader, info: LogInfo, signer: Signer, keys: ReadonlyMap<string, KeyObject>, o: PurgeOptions, purgedAt: number): Promise<Plan> {
  const purges = openPurges(await r.purges(info.logId), info, keys);
  const previous = purges.good[0];
  const M = previous?.belowLeaf ?? 0;
  const nothing = (reason: string, records = 0): Plan => ({ result: { logId: info.logId, origin: info.origin, fromLeaf: M, belowLeaf: M, records, persons: 0, purged: false, reason } });
  if (purges.bad.length) return nothing(`refused: ${purges.bad[0]} (run linkgw records verify)`);
  const verifiers = logVerifiers(info.origin, keys);
  const roots: RootToMatch[] = [];
  let latest: { size: number; rootHash: Buffer } | null = null;
  for (const c of await r.checkpoints(info.logId)) {
    try {
      openCheckpoint(c.signedNote, verifiers, { origin: info.origin });
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      return nothing(`refused: the stored checkpoint of ${c.size} leaves does not verify (run linkgw records verify)`);
    }
    roots.push({ size: c.size, rootHash: c.rootHash, source: 'log' });
    if (!latest || c.size > latest.size) latest = { size: c.size, rootHash: c.rootHash };
  }
  if (!latest) return nothing('the log has signed no checkpoint yet');
  const young = (await r.firstLeafFrom(info.logId, M, o.before)) ?? info.size;
  const N = Math.floor(Math.min(young, latest.size) / BLOCK) * BLOCK;
  if (N <= M) return nothing(M > 0 ? 'nothing older than that after the last purge' : 'no records older than that');

  // Verify what is about to go, from the previous purge's frontier to N.
  const start = { range: previous ? CompactRange.fromNodes(M, previous.frontier) : CompactRange.empty(), purgedBelow: M };
  const verifier = new LogVerifier({ logId: info.logId, origin: info.origin, treeSize: N, roots: roots.filter((t) => t.size > M && t.size <= N), start, maxProblems: 1 });
  let persons = 0;
  for (let at = M; at < N; ) {
    const page = await r.readLeaves(info.logId, at, N, o.pageSize ?? 2000);
    if (page.length === 0) break;
    const next = page[page.length - 1]!.leafIndex + 1;
    const stored = await r.persons(info.logId, at, next);
    for (const rec of page) {
      const p = stored.get(rec.leafIndex);
      if (p) persons += p.count;
      verifier.add(rec, p?.commitment, p?.stray ?? false);
    }
    at = next;
  }
  const checked = verifier.finish(null, roots.length, latest.size);
  const range = verifier.range;
  if (checked.problem || !range) return nothing(`refused: leaves below ${N} do not verify (${checked.problem?.kind ?? 'changed'} at leaf ${checked.problem?.leafIndex ?? '?'}: ${checked.problem?.detail ?? ''}); run linkgw records verify`);
  const rootHash = range.root();
  try {
    if (latest.size > N) checkConsistency(N, latest.size, await consistencyProofOf(r, info.logId, N, latest.size), rootHash, latest.rootHash);
    else if (!rootHash.equals(latest.rootHash)) throw new ProofError('the tree at the purge point is not the latest signed one');
  } catch (e) {
    if (!(e instanceof ProofError) && !/is not stored/.test(String((e as Error).message))) throw e;
    return nothing(`refused: the tree of ${N} leaves is not consistent with the latest signed checkpoint (${(e as Error).message}); run linkgw records verify`);
  }
  const signedNote = await signPurge({ origin: info.origin, belowLeaf: N, rootHash, purgedAt, before: o.before }, ed25519NoteSigner(info.origin, signer));
  return {
    result: { logId: info.logId, origin: info.origin, fromLeaf: M, belowLeaf: N, records: checked.records, persons, purged: false },
    purge: { logId: info.logId, belowLeaf: N, rootHash, frontier: [...range.hashes], signedNote, purgedAt, before: o.before },
  };
}

/** Purges every log of the store (see the file comment); what was purged per log. */
export async function purgeRecords(store: RecordStore, signer: Signer, keys: ReadonlyMap<string, KeyObject>, o: PurgeOptions): Promise<PurgeLogResult[]> {
  const purgedAt = o.now ?? Date.now();
  if (o.before > purgedAt) throw new RangeError('records purge: --before lies in the future');
  const plans = await store.readSnapshot(async (r) => {
    const out: Plan[] = [];
    for (const info of await r.logs()) out.push(await planLog(r, info, signer, keys, o, purgedAt));
    return out;
  });
  const results: PurgeLogResult[] = [];
  for (const p of plans) {
    if (!p.purge || o.dryRun) {
      results.push(p.result);
      continue;
    }
    const done = await store.purge(p.purge);
    results.push(done ? { ...p.result, records: done.records, persons: done.persons, purged: true } : { ...p.result, belowLeaf: p.result.fromLeaf, records: 0, persons: 0, reason: 'purged meanwhile by another run' });
  }
  // Also after a run that purged nothing new: it completes a run that stopped between its logs and this.
  if (!o.dryRun && store.finishPurge) {
    const finished = await store.finishPurge(o.before);
    o.finished?.(finished);
  }
  return results;
}

/**
 * `--before`: an ISO 8601 time, or an age: `7y` (calendar years), `90d`, `12h`, counted back from `now`.
 */
export function parseBefore(text: string, now = Date.now()): number {
  const m = /^(\d{1,4})([ydh])$/.exec(text.trim());
  if (m) {
    const n = Number(m[1]);
    if (m[2] === 'y') {
      const d = new Date(now);
      d.setUTCFullYear(d.getUTCFullYear() - n);
      return d.getTime();
    }
    return now - n * (m[2] === 'd' ? 86_400_000 : 3_600_000);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
  }
  throw new RangeError(`records purge --before: "${text}" is neither an ISO 8601 time nor an age such as 7y, 90d or 12h`);
}
