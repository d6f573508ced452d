/**
 * The wire format between the pooled engine and its worker threads, encoded and decoded in this one module.
 * Each task is one batch for one agency, answered with one flat string or one moved buffer, so a task costs one
 * message each way and no per-item structured cloning:
 *
 *   issue:  numbers (Float64Array, moved in)  → the codes joined into one string (CODE_LENGTH characters each)
 *   decode: codes joined into one string      → one double per code (Float64Array, moved out):
 *                                               version·2^40 + number when authentic, else a negative problem code
 *   issueBulk: one IssueCodes message          → its response's bytes, persons run and commitment (bulk-batch.ts),
 *              (its bytes as received, moved in)  each buffer moved out
 *
 * Measured on the 2-core box (1 thread, batches of 64 and 2048): returning one joined string costs the main
 * thread about 0.05 µs per code to receive and slice, against 0.15–0.25 µs for a cloned string[] and
 * 0.1–0.25 µs for a moved latin1 buffer that is then sliced into strings (the per-code string creation on the
 * main thread is what costs, not the copy).
 */
import { CODE_LENGTH, type Decoded, type DecodeProblem } from '../core/agency-code.js';

/**
 * What the pool gives each worker: the keyring's master keys (copied into the worker), and the subject secret
 * when the pool issues whole bulk messages (bulk-batch.ts).
 */
export interface MappingWorkerData {
  readonly current: number;
  readonly masters: ReadonlyArray<readonly [number, Uint8Array]>;
  readonly subjectSecret?: Uint8Array;
}

export interface IssueTask {
  readonly agency: string;
  readonly numbers: Float64Array;
}

export interface DecodeTask {
  readonly agency: string;
  /** `count` candidate codes of exactly CODE_LENGTH characters each, back to back. */
  readonly codes: string;
  readonly count: number;
}

/** Personal numbers are below 2^40, so version·2^40 + number is exact in a double (2^48 < 2^53). */
const VERSION_SHIFT = 2 ** 40;
const PROBLEM_CODES: Readonly<Record<DecodeProblem, number>> = {
  format: -1,
  'unknown-key-version': -2,
  'not-authentic': -3,
};
const PROBLEMS = new Map<number, DecodeProblem>(Object.entries(PROBLEM_CODES).map(([k, v]) => [v, k as DecodeProblem]));

/** Worker side: the issue result. */
export function joinCodes(codes: readonly string[]): string {
  return codes.join('');
}

/** Main side: the i-th code of an issue result. */
export function codeAt(joined: string, i: number): string {
  return joined.slice(i * CODE_LENGTH, (i + 1) * CODE_LENGTH);
}

/** Worker side: the codes of a decode task. */
export function codesOf(task: DecodeTask): string[] {
  const codes = new Array<string>(task.count);
  for (let i = 0; i < task.count; i++) codes[i] = codeAt(task.codes, i);
  return codes;
}

/** Worker side: decode results, one double each. */
export function packDecoded(decoded: readonly Decoded[]): Float64Array {
  const out = new Float64Array(decoded.length);
  for (let i = 0; i < decoded.length; i++) {
    const d = decoded[i]!;
    out[i] = d.ok ? d.version * VERSION_SHIFT + d.number : PROBLEM_CODES[d.problem];
  }
  return out;
}

/** Main side: one decode result. */
export function unpackDecoded(v: number): Decoded {
  return v >= 0 ? { ok: true, number: v % VERSION_SHIFT, version: Math.floor(v / VERSION_SHIFT) } : { ok: false, problem: PROBLEMS.get(v) ?? 'format' };
}
