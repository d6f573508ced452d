/**
 * The log's side of C2SP tlog-witness: each new checkpoint is pushed to every configured witness
 * (`POST <prefix>/add-checkpoint` with the size the witness last cosigned and a consistency proof from it),
 * the cosignature that comes back is checked against the witness's key and stored with the checkpoint, and
 * the gateway serves the checkpoint with it. A witness that was never told of the log answers 409 with the size
 * it knows (0): the client learns it and sends again.
 *
 * All of it runs beside the request path. One push per witness at a time; while one is in flight only the
 * newest checkpoint waits, older ones are skipped (a cosignature on the newest covers the history).
 */
import { cosignatureVerifierFromKey } from '../core/cosignature.js';
import { openNote, parseNote, type NoteVerifier } from '../core/signed-note.js';
import type { Logger } from '../log/logger.js';
import { consistencyProofOf } from './log-proofs.js';
import { notify } from '../core/observer.js';
import type { RecordStore, StoredCheckpoint } from './record-store.js';

export interface WitnessTarget {
  readonly vkey: string;
  /** The witness's submission prefix (add-checkpoint is under it). */
  readonly url: string;
}

export interface WitnessObserver {
  witnessCosigned(witness: string, size: number): void;
  witnessRefused(witness: string, status: number | 'error'): void;
}

interface Target {
  readonly name: string;
  readonly url: string;
  readonly verifier: NoteVerifier;
  /** The size this witness last cosigned, per log (unknown until it answers). */
  readonly known: Map<string, number>;
  busy: boolean;
  next: StoredCheckpoint | undefined;
}

export class WitnessClient {
  readonly #targets: Target[];
  readonly #store: RecordStore;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #observer: WitnessObserver | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(o: { store: RecordStore; witnesses: readonly WitnessTarget[]; log: Logger; timeoutMs?: number; observer?: WitnessObserver }) {
    this.#store = o.store;
    this.#log = o.log;
    this.#timeoutMs = o.timeoutMs ?? 5000;
    this.#observer = o.observer;
    this.#targets = o.witnesses.map((w) => {
      const verifier = cosignatureVerifierFromKey(w.vkey);
      return { name: verifier.name, url: w.url.replace(/\/+$/, ''), verifier, known: new Map(), busy: false, next: undefined };
    });
  }

  get size(): number {
    return this.#targets.length;
  }

  /** Asks every witness to cosign this checkpoint (returns at once). */
  push(c: StoredCheckpoint): void {
    for (const t of this.#targets) {
      t.next = c;
      if (!t.busy) this.#drain(t);
    }
  }

  #drain(t: Target): void {
    t.busy = true;
    const run = (async () => {
      while (t.next) {
        const c = t.next;
        t.next = undefined;
        await this.#submit(t, c).catch((err: unknown) => {
          notify(this.#observer, (o) => o.witnessRefused(t.name, 'error'));
          this.#log.warn('witness did not cosign the checkpoint', { witness: t.name, size: c.size, err });
        });
      }
    })().finally(() => {
      t.busy = false;
      this.#inFlight.delete(run);
    });
    this.#inFlight.add(run);
  }

  async #submit(t: Target, c: StoredCheckpoint, retried = false): Promise<void> {
    const old = Math.min(t.known.get(c.logId) ?? 0, c.size);
    const proof = old === 0 ? [] : await consistencyProofOf(this.#store, c.logId, old, c.size);
    const body = `old ${old}\n${proof.map((h) => `${h.toString('base64')}\n`).join('')}\n${c.signedNote}`;
    const res = await fetch(`${t.url}/add-checkpoint`, { method: 'POST', body, signal: AbortSignal.timeout(this.#timeoutMs) });
    const text = await res.text();
    if (res.status === 409 && !retried) {
      // The witness knows another size of this log: send again from there.
      const size = /^(0|[1-9][0-9]*)\n$/.exec(text);
      if (!size) throw new Error(`witness ${t.name}: a 409 without a tree size`);
      t.known.set(c.logId, Number(size[1]));
      if (Number(size[1]) > c.size) throw new Error(`witness ${t.name} has seen ${size[1]} leaves of this log, more than ${c.size}: a newer checkpoint, or a fork`);
      return this.#submit(t, c, true);
    }
    if (res.status !== 200) {
      notify(this.#observer, (o) => o.witnessRefused(t.name, res.status));
      throw new Error(`witness ${t.name} answered ${res.status}: ${text.slice(0, 200)}`);
    }
    // Keep only the lines this witness's key verifies over this checkpoint.
    const { text: noteText } = parseNote(c.signedNote);
    const lines = text.split('\n').filter((l) => l.startsWith('\u2014 ')).map((l) => `${l}\n`);
    const good = lines.filter((l) => {
      try {
        return openNote(`${noteText}\n${l}`, [t.verifier]).verified.length === 1;
      } catch {
        return false;
      }
    });
    if (good.length === 0) throw new Error(`witness ${t.name}: no valid cosignature in its answer`);
    t.known.set(c.logId, c.size);
    await this.#store.addCosignatures(c.logId, c.size, good.join(''));
    notify(this.#observer, (o) => o.witnessCosigned(t.name, c.size));
  }

  /** Waits for the pushes in flight (shutdown). */
  async close(): Promise<void> {
    for (const t of this.#targets) t.next = undefined;
    await Promise.allSettled([...this.#inFlight]);
  }
}
