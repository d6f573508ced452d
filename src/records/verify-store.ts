/**
 * `linkgw records verify`: every log in a store, rebuilt from its records and checked against the checkpoints
 * it signed and against checkpoints saved outside the store (`--against FILE`: what `linkgw records
 * checkpoints` printed earlier, or a witness's copy). A log cut back below a saved checkpoint, together with
 * its own later checkpoints, is caught only by the saved one: keep them outside the store.
 *
 * Memory stays bounded: records are read a page at a time into a compact range (at most 64 hashes), the
 * stored tree nodes are compared with the rebuilt ones in batches, and of the persons only one commitment per
 * batch record is held (read in one pass over the persons for the whole store).
 */
import type { KeyObject } from 'node:crypto';
import { openCheckpoint, parseCheckpointText, type Checkpoint } from '../core/checkpoint.js';
import type { CompletedNode } from '../core/compact-range.js';
import { cosignatureVerifierFromKey } from '../core/cosignature.js';
import { LogVerifier, type LogReport, type RootToMatch } from '../core/log-verify.js';
import { checkConsistency, ProofError, type NodeId } from '../core/merkle.js';
import { ed25519NoteVerifier, NoteError, parseNote, type NoteVerifier } from '../core/signed-note.js';
import { consistencyProofOf } from './log-proofs.js';
import type { LogInfo, RecordStore, StoredCheckpoint, StoredPersons } from './record-store.js';
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
  return {
    logId: origin,
    origin,
    records: 0,
    treeSize: 0,
    checkpoints: 0,
    signedSize: 0,
    unsigned: 0,
    problem: { logId: origin, kind, leafIndex: null, recordId: null, detail },
  };
}

/** Compares rebuilt tree nodes with the stored ones in batches (the proofs the store serves come from them). */
class NodeCheck {
  readonly #pending: CompletedNode[] = [];
  constructor(
    private readonly store: RecordStore,
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
      return this.verifier.fail('deleted', null, 'tree nodes are missing from the store: proofs of these records cannot be served');
    }
    const i = batch.findIndex((n, j) => !n.hash.equals(stored[j]!));
    if (i >= 0) {
      const n = batch[i]!;
      this.verifier.fail('changed', n.index * 2 ** n.level, `the stored tree node ${n.level}/${n.index} differs from the records: proofs served from it fail`);
    }
  }
}

async function verifyLog(store: RecordStore, info: LogInfo, keys: ReadonlyMap<string, KeyObject>, saved: readonly Saved[], persons: StoredPersons, o: VerifyOptions): Promise<LogReport> {
  const stored = await store.checkpoints(info.logId);
  const verifiers = logVerifiers(info.origin, keys);
  const witnesses = (o.witnesses ?? []).map(cosignatureVerifierFromKey);
  const roots: RootToMatch[] = [];
  let signedSize = 0;
  let badCheckpoint: string | null = null;
  for (const c of stored) {
    try {
      const { checkpoint } = openCheckpoint(witnesses.length ? cosignedNote(c) : c.signedNote, verifiers, { origin: info.origin, others: witnesses });
      if (checkpoint.size !== c.size || !checkpoint.rootHash.equals(c.rootHash)) throw new NoteError('its stored size or root differs from the signed note');
      roots.push({ size: c.size, rootHash: c.rootHash, source: 'log' });
      signedSize = Math.max(signedSize, c.size);
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      badCheckpoint ??= `the stored checkpoint of ${c.size} leaves does not verify: ${e.message}`;
    }
  }
  for (const s of saved) roots.push({ size: s.checkpoint.size, rootHash: s.checkpoint.rootHash, source: 'saved' });
  const verifier = new LogVerifier({ logId: info.logId, origin: info.origin, treeSize: info.size, roots, onNode: (n) => nodes.add(n) });
  const nodes = new NodeCheck(store, info.logId, verifier);
  if (badCheckpoint) verifier.fail('bad-checkpoint', null, badCheckpoint);
  const pageSize = o.pageSize ?? 2000;
  for (let at = 0; at < info.size && !verifier.problem; ) {
    const page = await store.readLeaves(info.logId, at, info.size, pageSize);
    if (page.length === 0) break;
    for (const r of page) verifier.add(r, persons.batch.get(r.recordId)?.commitment, persons.strays.has(r.recordId));
    at = page[page.length - 1]!.leafIndex + 1;
    await nodes.flush();
    o.progress?.(info.logId, at, info.size);
  }
  await nodes.flush(true);
  return verifier.finish(info.maxLeafIndex, stored.length + saved.length, signedSize);
}

/** Verifies every log of the store (and every log a saved checkpoint names). */
export async function verifyStore(store: RecordStore, keys: ReadonlyMap<string, KeyObject>, o: VerifyOptions = {}): Promise<LogReport[]> {
  const { byOrigin, bad } = openSaved(o.against ?? [], keys);
  const out: LogReport[] = [...bad];
  const logs = await store.logs();
  const persons = logs.some((l) => l.size > 0) ? await store.storedPersons() : { batch: new Map(), strays: new Set<string>() };
  for (const info of logs) out.push(await verifyLog(store, info, keys, byOrigin.get(info.origin) ?? [], persons, o));
  const known = new Set(logs.map((l) => l.origin));
  for (const [origin, saved] of byOrigin)
    if (!known.has(origin)) out.push(missing(origin, 'deleted', `a saved checkpoint of ${Math.max(...saved.map((s) => s.checkpoint.size))} leaves names this log, and the store has no such log`));
  return out;
}

/**
 * The quick check against saved checkpoints, without reading every record: for each, a consistency proof
 * (from the stored tree nodes) from its size to the store's latest signed checkpoint must verify. Catches a
 * log cut back below a saved checkpoint or rewritten under it; `verifyStore` also checks the records themselves.
 */
export async function verifyAgainst(store: RecordStore, keys: ReadonlyMap<string, KeyObject>, notes: readonly string[]): Promise<LogReport[]> {
  const { byOrigin, bad } = openSaved(notes, keys);
  const out: LogReport[] = [...bad];
  const logs = new Map((await store.logs()).map((l) => [l.origin, l]));
  const latest = new Map<string, StoredCheckpoint>((await store.latestCheckpoints()).map((c) => [c.origin, c]));
  for (const [origin, saved] of byOrigin) {
    const info = logs.get(origin);
    const head = latest.get(origin);
    if (!info || !head) {
      out.push(missing(origin, 'deleted', `a saved checkpoint of ${Math.max(...saved.map((s) => s.checkpoint.size))} leaves names this log, and the store has no ${info ? 'checkpoint of it' : 'such log'}`));
      continue;
    }
    const report = (problem: LogReport['problem']): LogReport => ({
      logId: info.logId,
      origin,
      records: 0,
      treeSize: info.size,
      checkpoints: saved.length + 1,
      signedSize: head.size,
      unsigned: Math.max(0, info.size - head.size),
      problem,
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
        checkConsistency(c.size, head.size, await consistencyProofOf(store, info.logId, c.size, head.size), c.rootHash, head.rootHash);
      } catch (e) {
        if (!(e instanceof ProofError) && !/is not stored/.test(String((e as Error).message))) throw e;
        problem = { logId: info.logId, kind: 'changed', leafIndex: null, recordId: null, detail: `the store's log is not consistent with a saved checkpoint of ${c.size} leaves: ${(e as Error).message}` };
      }
    }
    out.push(report(problem));
  }
  return out;
}
