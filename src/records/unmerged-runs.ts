/**
 * The persons runs a store has committed but not yet merged into its person index (ADR 0104), as the store that
 * writes them keeps them in memory: for each run, where it is (log, leaf, record) and a Bloom filter of its
 * keys, so that a lookup by person reads only the few runs that may hold it, and the indexer takes them in
 * commit order. Bounded: `persons` says how many keys wait; the store holds commits back past its cap.
 *
 * The filter needs no hashing: subject keys are AES outputs, uniformly random, so two of their 32-bit words
 * serve as the two hashes of double hashing (Kirsch and Mitzenmacher). Ten bits a key and seven probes give a
 * false-positive rate under 1%: with 1,000 runs waiting, a lookup reads about ten runs it did not need.
 */
import { runIncludes, runLength, SUBJECT_KEY_BYTES, type PersonsRun } from '../core/persons-run.js';

const BITS_PER_KEY = 10;
const PROBES = 7;

export interface RunPlace {
  readonly logId: string;
  readonly leafIndex: number;
  readonly recordId: string;
  readonly persons: number;
}

class RunFilter {
  readonly #bits: Uint32Array;
  readonly #m: number;

  constructor(run: PersonsRun) {
    const n = Math.max(1, runLength(run));
    this.#m = Math.max(64, n * BITS_PER_KEY);
    this.#bits = new Uint32Array(Math.ceil(this.#m / 32));
    const dv = new DataView(run.buffer, run.byteOffset, run.byteLength);
    for (let i = 0; i < run.byteLength; i += SUBJECT_KEY_BYTES) this.#add(dv.getUint32(i), dv.getUint32(i + 4));
  }

  #add(h1: number, h2: number): void {
    // `| 1` makes an int32 (maybe negative): back to unsigned, so every probe is a bit of the filter.
    const step = (h2 | 1) >>> 0;
    for (let p = 0; p < PROBES; p++) {
      const bit = (h1 + p * step) % this.#m;
      this.#bits[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mayHold(h1: number, h2: number): boolean {
    const step = (h2 | 1) >>> 0;
    for (let p = 0; p < PROBES; p++) {
      const bit = (h1 + p * step) % this.#m;
      if ((this.#bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

export class UnmergedRuns {
  readonly #runs: { place: RunPlace; filter: RunFilter }[] = [];
  #persons = 0;

  /** Keys waiting in all runs. */
  get persons(): number {
    return this.#persons;
  }

  get runs(): number {
    return this.#runs.length;
  }

  /** A run just committed (or found unmerged at open), in commit order. */
  add(place: Omit<RunPlace, 'persons'>, run: PersonsRun): void {
    const persons = runLength(run);
    this.#runs.push({ place: { ...place, persons }, filter: new RunFilter(run) });
    this.#persons += persons;
  }

  /** The runs that may hold `key` (16 bytes): read each and search it (`holds`) before trusting it. */
  candidates(key: Uint8Array): RunPlace[] {
    if (this.#runs.length === 0) return [];
    const dv = new DataView(key.buffer, key.byteOffset, key.byteLength);
    const h1 = dv.getUint32(0);
    const h2 = dv.getUint32(4);
    const out: RunPlace[] = [];
    for (const r of this.#runs) if (r.filter.mayHold(h1, h2)) out.push(r.place);
    return out;
  }

  /** The oldest runs, up to `maxPersons` keys in all (at least one run): what the indexer merges next. */
  oldest(maxPersons: number): RunPlace[] {
    const out: RunPlace[] = [];
    let n = 0;
    for (const r of this.#runs) {
      if (out.length > 0 && n + r.place.persons > maxPersons) break;
      out.push(r.place);
      n += r.place.persons;
    }
    return out;
  }

  /** The oldest `count` runs are in the index now (or gone with a purge). */
  merged(count: number): void {
    for (const r of this.#runs.splice(0, count)) this.#persons -= r.place.persons;
  }

  /** Forgets every run of `logId` below `belowLeaf` (a purge removed them). */
  purged(logId: string, belowLeaf: number): void {
    for (let i = this.#runs.length - 1; i >= 0; i--) {
      const p = this.#runs[i]!.place;
      if (p.logId === logId && p.leafIndex < belowLeaf) {
        this.#persons -= p.persons;
        this.#runs.splice(i, 1);
      }
    }
  }
}

/** Whether a stored run holds `key`: the filter's answer made exact. */
export function holds(run: PersonsRun, key: Uint8Array): boolean {
  return runIncludes(run, key);
}
