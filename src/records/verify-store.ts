/**
 * `linkgw records verify`: every log in a store, rebuilt from its records and checked against the checkpoints
 * it signed and against checkpoints saved outside the store (`--against FILE`: what `linkgw records
 * checkpoints` printed earlier, or a witness's copy). A log cut back below a saved checkpoint, together with
 * its own later checkpoints, is caught only by the saved one: keep them outside the store.
 *
 * Everything is read in one snapshot of the store (SnapshotReader), so records, nodes and checkpoints agree
 * while the gateway writes. Memory stays bounded: records are read a page at a time into a compact range (at
 * most 64 hashes), the persons of the same page with them, the stored tree nodes are compared with the rebuilt
 * ones in batches, and at most `maxProblems` problems are kept per log (the rest are counted).
 *
 * A log starts at the frontier of its latest purge (the signed statement of leaves [0, N) removed on purpose:
 * src/core/purge-note.ts), or, for incremental verification (`from`), at the tree of a checkpoint verified
 * earlier: its stored nodes must fold to that checkpoint's root and be consistent with the latest one.
 */
import type { KeyObject } from 'node:crypto';
import { openCheckpoint, parseCheckpointText, type Checkpoint } from '../core/checkpoint.js';
import type { CompletedNode } from '../core/compact-range.js';
import { cosignatureVerifierFromKey } from '../core/cosignature.js';
import { LogVerifier, type LogReport, type ProblemKind, type RootToMatch, type VerifyStart } from '../core/log-verify.js';
import { checkConsistency, ProofError, rangeNodes, type NodeId } from '../core/merkle.js';
import { CompactRange } from '../core/compact-range.js';
import { checkPurge } from '../core/purge-note.js';
import { ed25519NoteVerifier, NoteError, parseNote, type NoteVerifier } from '../core/signed-note.js';
import { consistencyProofOf } from './log-proofs.js';
import type { LogInfo, RecordStore, SnapshotReader, StoredCheckpoint, StoredPurge } from './record-store.js';
import { cosignedNote, LOWEST_STORED_LEVEL } from './schema.js';

export type { LogReport, LogProblem } from '../core/log-verify.js';

export interface VerifyOptions {
  /** Signed checkpoints kept outside the store, as text (see `parseSavedCheckpoints`). */
  readonly against?: readonly string[];
  /** Witness verifier keys (cosignature/v1): stored cosignatures by these witnesses must verify. */
  readonly witnesses?: readonly string[];
  /** Records read at a time (default 2,000). */
  readonly pageSize?: number;
  /** Told of progress after each page. */
  readonly progress?: (logId: string, done: number, total: number) => void;
  /** Checkpoints verified earlier (same formats as `against`): only the records after them are read. */
  readonly from?: readonly string[];
  /** Problems kept per log (default 100); the rest are counted. */
  readonly maxProblems?: number;
}

/** Verifiers of a log's checkpoints: every sealing key (current and rotated out) under the log's origin. */
export function logVerifiers(origin: string, keys: ReadonlyMap<string, KeyObject>): NoteVerifier[] {
  return [...keys.values()].map((k) => ed25519NoteVerifier(origin, k));
}

/**
 * Signed checkpoints from a file: either JSON lines as `linkgw records checkpoints` prints them (objects with
 * a `signedNote`), or signed notes one after another (a witness's or another tool's copy).
 */
export function parseSavedCheckpoints(text: string): string[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{'))
    return trimmed
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const v = JSON.parse(l) as { signedNote?: unknown };
        if (typeof v.signedNote !== 'string') throw new Error('saved checkpoints: each JSON line has a signedNote');
        return v.signedNote;
      });
  // Notes back to back: a note ends with its last signature line, before a line that is not one.
  const notes: string[] = [];
  const lines = trimmed.split('\n');
  let current: string[] = [];
  let inSignatures = false;
  for (const line of lines) {
    if (inSignatures && !line.startsWith('\u2014 ')) {
      notes.push(current.join('\n') + '\n');
      current = [];
      inSignatures = false;
      if (line === '') continue;
    }
    if (!inSignatures && line === '' && current.length > 0) inSignatures = true;
    current.push(line);
  }
  if (current.length && inSignatures) notes.push(current.join('\n') + '\n');
  return notes.filter((n) => n.trim());
}

interface Saved {
  readonly checkpoint: Checkpoint;
}

/** Opens saved checkpoints with the log keys; the ones that do not open are reported, not trusted. */
function openSaved(notes: readonly string[], keys: ReadonlyMap<string, KeyObject>): { byOrigin: Map<string, Saved[]>; bad: LogReport[] } {
  const byOrigin = new Map<string, Saved[]>();
  const bad: LogReport[] = [];
  for (const note of notes) {
    let origin = '(unreadable)';
    try {
      origin = parseCheckpointText(parseNote(note).text).origin;
      const { checkpoint } = openCheckpoint(note, logVerifiers(origin, keys), { origin });
      let l = byOrigin.get(origin);
      if (!l) byOrigin.set(origin, (l = []));
      l.push({ checkpoint });
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      bad.push(missing(origin, 'bad-checkpoint', `a saved checkpoint does not verify with this gateway's keys (${e.message})`));
    }
  }
  return { byOrigin, bad };
}

function missing(origin: string, kind: 'deleted' | 'bad-checkpoint', detail: string): LogReport {
  const problem = { logId: origin, kind, leafIndex: null, recordId: null, detail };
  return { logId: origin, origin, records: 0, treeSize: 0, checkpoints: 0, signedSize: 0, unsigned: 0, problem, problems: [problem], problemCount: 1, from: 0, purgedBelow: 0 };
}

/** Compares rebuilt tree nodes with the stored ones in batches (the proofs the store serves come from them). */
class NodeCheck {
  readonly #pending: CompletedNode[] = [];
  #missing = false;
  constructor(
    private readonly store: Pick<SnapshotReader, 'nodes'>,
    private readonly logId: string,
    private readonly verifier: LogVerifier,
  ) {}

  add(n: CompletedNode): void {
    // The lower ones are folded from the leaf hashes, which the records themselves are checked against.
    if (n.level >= LOWEST_STORED_LEVEL) this.#pending.push(n);
  }

  async flush(force = false): Promise<void> {
    if (this.#pending.length === 0 || (!force && this.#pending.length < 4096)) return;
    const batch = this.#pending.splice(0);
    let stored: Buffer[];
    try {
      stored = await this.store.nodes(this.logId, batch.map((n): NodeId => ({ level: n.level, index: n.index })));
    } catch {
      if (!this.#missing) this.verifier.fail('deleted', batch[0]!.index * 2 ** batch[0]!.level, 'tree nodes are missing from the store: proofs of these records cannot be served');
      this.#missing = true;
      return;
    }
    batch.forEach((n, j) => {
      if (!n.hash.equals(stored[j]!)) this.verifier.fail('changed', n.index * 2 ** n.level, `the stored tree node ${n.level}/${n.index} differs from the records: proofs served from it fail`);
    });
  }
}

const notStored = (e: unknown) => /is not stored/.test(String((e as Error | undefined)?.message));

/** The purges of a log that verify (the latest first), and a problem for each one that does not. */
export function openPurges(purges: readonly StoredPurge[], info: LogInfo, keys: ReadonlyMap<string, KeyObject>): { good: StoredPurge[]; bad: string[] } {
  const good: StoredPurge[] = [];
  const bad: string[] = [];
  for (const p of purges) {
    try {
      checkPurge(p.signedNote, logVerifiers(info.origin, keys), { origin: info.origin, belowLeaf: p.belowLeaf, rootHash: p.rootHash, purgedAt: p.purgedAt, before: p.before }, p.frontier);
      if (p.belowLeaf > info.size) throw new NoteError(`it purges ${p.belowLeaf} leaves of a log of ${info.size}`);
      good.push(p);
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      bad.push(`the purge of the leaves below ${p.belowLeaf} does not verify: ${e.message}`);
    }
  }
  return { good: good.sort((a, b) => b.belowLeaf - a.belowLeaf), bad };
}

interface Early {
  kind: ProblemKind;
  leafIndex: number | null;
  detail: string;
}

async function verifyLog(r: SnapshotReader, info: LogInfo, keys: ReadonlyMap<string, KeyObject>, saved: readonly Saved[], verified: readonly Saved[], o: VerifyOptions): Promise<LogReport> {
  const stored = await r.checkpoints(info.logId);
  const verifiers = logVerifiers(info.origin, keys);
  const witnesses = (o.witnesses ?? []).map(cosignatureVerifierFromKey);
  const roots: RootToMatch[] = [];
  const early: Early[] = [];
  let latest: { size: number; rootHash: Buffer } | null = null;
  for (const c of stored) {
    try {
      const { checkpoint } = openCheckpoint(witnesses.length ? cosignedNote(c) : c.signedNote, verifiers, { origin: info.origin, others: witnesses });
      if (checkpoint.size !== c.size || !checkpoint.rootHash.equals(c.rootHash)) throw new NoteError('its stored size or root differs from the signed note');
      roots.push({ size: c.size, rootHash: c.rootHash, source: 'log' });
      if (!latest || c.size > latest.size) latest = { size: c.size, rootHash: c.rootHash };
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      early.push({ kind: 'bad-checkpoint', leafIndex: null, detail: `the stored checkpoint of ${c.size} leaves does not verify: ${e.message}` });
    }
  }
  const signedSize = latest?.size ?? 0;

  // A purge: the log starts at its frontier, which must also be what the store's tree nodes say.
  let start: VerifyStart | undefined;
  const purges = openPurges(await r.purges(info.logId), info, keys);
  for (const detail of purges.bad) early.push({ kind: 'bad-purge', leafIndex: null, detail });
  const purge = purges.good[0];
  if (purge) {
    const N = purge.belowLeaf;
    try {
      const nodes = await r.nodes(info.logId, rangeNodes(0, N));
      if (nodes.some((h, i) => !h.equals(purge.frontier[i]!))) early.push({ kind: 'changed', leafIndex: null, detail: `the stored tree nodes at the purge point (${N} leaves) differ from the signed purge frontier` });
    } catch (e) {
      if (!notStored(e)) throw e;
      early.push({ kind: 'deleted', leafIndex: null, detail: `tree nodes at the purge point (${N} leaves) are missing from the store` });
    }
    const left = await r.readLeaves(info.logId, 0, N, 1);
    if (left[0]) early.push({ kind: 'inserted', leafIndex: left[0].leafIndex, detail: `a record below the purge point (${N} leaves): the purge removed every record there` });
    start = { range: CompactRange.fromNodes(N, purge.frontier), purgedBelow: N };
  }

  // Incremental: from the largest checkpoint verified earlier, if it is above the purge point.
  const base = verified.reduce<Checkpoint | null>((m, s) => (!m || s.checkpoint.size > m.size ? s.checkpoint : m), null);
  if (base && base.size > info.size) early.push({ kind: 'deleted', leafIndex: info.size, detail: `a checkpoint verified earlier has ${base.size} leaves; the log has ${info.size}: records were cut off` });
  else if (base && base.size > (start?.range.size ?? 0)) {
    try {
      const range = CompactRange.fromNodes(base.size, await r.nodes(info.logId, rangeNodes(0, base.size)));
      if (!range.root().equals(base.rootHash)) {
        early.push({ kind: 'changed', leafIndex: null, detail: `the stored tree of ${base.size} leaves differs from the checkpoint verified earlier: verified from ${start?.range.size ?? 0} instead` });
      } else {
        if (latest && latest.size > base.size) checkConsistency(base.size, latest.size, await consistencyProofOf(r, info.logId, base.size, latest.size), base.rootHash, latest.rootHash);
        start = { range, purgedBelow: start?.purgedBelow ?? 0 };
      }
    } catch (e) {
      if (e instanceof ProofError) early.push({ kind: 'changed', leafIndex: null, detail: `the log is not consistent with the checkpoint of ${base.size} leaves verified earlier: ${e.message}` });
      else if (notStored(e)) early.push({ kind: 'deleted', leafIndex: null, detail: `tree nodes of the tree of ${base.size} leaves verified earlier are missing from the store` });
      else throw e;
    }
  }

  // Checkpoints kept outside the store below the start: consistent with the start's tree, if the nodes a
  // proof needs are still stored (below a purge only sizes that are multiples of 8 are).
  const startSize = start?.range.size ?? 0;
  for (const s of [...saved, ...verified]) {
    const c = s.checkpoint;
    if (c.size > startSize) {
      roots.push({ size: c.size, rootHash: c.rootHash, source: 'saved' });
      continue;
    }
    if (c.size === 0 || c.size === startSize) {
      roots.push({ size: c.size, rootHash: c.rootHash, source: 'saved' });
      continue;
    }
    try {
      checkConsistency(c.size, startSize, await consistencyProofOf(r, info.logId, c.size, startSize), c.rootHash, start!.range.root());
    } catch (e) {
      if (e instanceof ProofError) early.push({ kind: 'changed', leafIndex: null, detail: `the log is not consistent with a saved checkpoint of ${c.size} leaves: ${e.message}` });
      else if (!notStored(e)) throw e;
    }
  }

  const verifier = new LogVerifier({
    logId: info.logId,
    origin: info.origin,
    treeSize: info.size,
    roots,
    onNode: (n) => nodes.add(n),
    ...(start ? { start } : {}),
    ...(o.maxProblems !== undefined ? { maxProblems: o.maxProblems } : {}),
  });
  const nodes = new NodeCheck(r, info.logId, verifier);
  for (const p of early) verifier.fail(p.kind, p.leafIndex, p.detail);
  const pageSize = o.pageSize ?? 2000;
  for (let at = startSize; at < info.size; ) {
    const page = await r.readLeaves(info.logId, at, info.size, pageSize);
    if (page.length === 0) break;
    const next = page[page.length - 1]!.leafIndex + 1;
    const persons = await r.persons(info.logId, at, next);
    for (const rec of page) {
      const p = persons.get(rec.leafIndex);
      verifier.add(rec, p?.commitment, p?.stray ?? false);
    }
    at = next;
    await nodes.flush();
    o.progress?.(info.logId, at, info.size);
  }
  await nodes.flush(true);
  return verifier.finish(info.maxLeafIndex, stored.length + saved.length + verified.length, signedSize);
}

/** Verifies every log of the store (and every log a saved checkpoint names), in one snapshot. */
export async function verifyStore(store: RecordStore, keys: ReadonlyMap<string, KeyObject>, o: VerifyOptions = {}): Promise<LogReport[]> {
  const { byOrigin, bad } = openSaved(o.against ?? [], keys);
  const from = openSaved(o.from ?? [], keys);
  const out: LogReport[] = [...bad, ...from.bad];
  return store.readSnapshot(async (r) => {
    const logs = await r.logs();
    for (const info of logs) out.push(await verifyLog(r, info, keys, byOrigin.get(info.origin) ?? [], from.byOrigin.get(info.origin) ?? [], o));
    const known = new Set(logs.map((l) => l.origin));
    for (const [origin, saved] of [...byOrigin, ...from.byOrigin])
      if (!known.has(origin)) out.push(missing(origin, 'deleted', `a saved checkpoint of ${Math.max(...saved.map((s) => s.checkpoint.size))} leaves names this log, and the store has no such log`));
    return out;
  });
}

/**
 * The quick check against saved checkpoints, without reading every record: for each, a consistency proof
 * (from the stored tree nodes) from its size to the store's latest signed checkpoint must verify. Catches a
 * log cut back below a saved checkpoint or rewritten under it; `verifyStore` also checks the records themselves.
 * A saved checkpoint below a purge whose proof needs purged leaves is skipped (only `verifyStore` checks purges).
 */
export async function verifyAgainst(store: RecordStore, keys: ReadonlyMap<string, KeyObject>, notes: readonly string[]): Promise<LogReport[]> {
  const { byOrigin, bad } = openSaved(notes, keys);
  const out: LogReport[] = [...bad];
  return store.readSnapshot(async (r) => {
    const logs = new Map((await r.logs()).map((l) => [l.origin, l]));
    for (const [origin, saved] of byOrigin) {
      const info = logs.get(origin);
      const head: StoredCheckpoint | undefined = info ? (await r.checkpoints(info.logId)).at(-1) : undefined;
      if (!info || !head) {
        out.push(missing(origin, 'deleted', `a saved checkpoint of ${Math.max(...saved.map((s) => s.checkpoint.size))} leaves names this log, and the store has no ${info ? 'checkpoint of it' : 'such log'}`));
        continue;
      }
      const purgedBelow = openPurges(await r.purges(info.logId), info, keys).good[0]?.belowLeaf ?? 0;
      const report = (problem: LogReport['problem']): LogReport => ({
        logId: info.logId,
        origin,
        records: 0,
        treeSize: info.size,
        checkpoints: saved.length + 1,
        signedSize: head.size,
        unsigned: Math.max(0, info.size - head.size),
        problem,
        problems: problem ? [problem] : [],
        problemCount: problem ? 1 : 0,
        from: 0,
        purgedBelow,
      });
      let problem: LogReport['problem'] = null;
      try {
        openCheckpoint(head.signedNote, logVerifiers(origin, keys), { origin });
      } catch (e) {
        if (!(e instanceof NoteError)) throw e;
        problem = { logId: info.logId, kind: 'bad-checkpoint', leafIndex: null, recordId: null, detail: `the store's latest checkpoint does not verify: ${e.message}` };
      }
      for (const s of saved.sort((a, b) => a.checkpoint.size - b.checkpoint.size)) {
        if (problem) break;
        const c = s.checkpoint;
        if (c.size > head.size) {
          problem = { logId: info.logId, kind: 'deleted', leafIndex: head.size, recordId: null, detail: `a saved checkpoint has ${c.size} leaves; the store's latest has ${head.size}: records were cut off` };
          break;
        }
        try {
          checkConsistency(c.size, head.size, await consistencyProofOf(r, info.logId, c.size, head.size), c.rootHash, head.rootHash);
        } catch (e) {
          if (!(e instanceof ProofError) && !notStored(e)) throw e;
          if (notStored(e) && c.size < purgedBelow) continue;
          problem = { logId: info.logId, kind: 'changed', leafIndex: null, recordId: null, detail: `the store's log is not consistent with a saved checkpoint of ${c.size} leaves: ${(e as Error).message}` };
        }
      }
      out.push(report(problem));
    }
    return out;
  });
}
