/**
 * One bulk issuance message, whole: the numbers' check digits, the codes, the persons run of the batch
 * record (the raw subject keys, sorted and distinct) and its commitment, and the IssueCodesResponse's bytes.
 * It runs in one pool task on a worker thread (mapping-worker.ts) or inline for small messages, and makes no JS
 * object per item on the way: codes and error texts are written straight into the response.
 *
 * Per item the result is what the per-object path gave: a valid number gets its code; anything else gets status
 * INVALID_ARGUMENT and `personalNumberProblem`'s text for the number as protobuf-es would have decoded it.
 */
import { CODE_BYTES, CODE_LENGTH, type AgencyCodec } from '../core/agency-code.js';
import { base32EncodeInto } from '../core/base32.js';
import { runCommitment, runOf, type PersonsRun } from '../core/persons-run.js';
import { checkPersonalNumber } from '../core/personal-number.js';
import type { SubjectKeys } from '../core/subject-key.js';
import { personalNumberProblem } from '../service/personal-number-input.js';
import {
  errorResultBytes,
  numberText,
  offsetBytes,
  okResultBytes,
  recordIdBytes,
  scanIssueCodesRequest,
  writeErrorResult,
  writeOffset,
  writeOkResultHead,
  writeRecordId,
} from './issue-codes-wire.js';

/** The numbers of one message: an IssueCodesRequest's bytes as received (scanned: `count` numbers), or strings. */
export type BulkNumbers = { readonly bytes: Uint8Array; readonly count: number } | { readonly strings: readonly string[] };

export interface BulkTask {
  readonly agency: string;
  /** The id of the batch's record, made before the task: it is in the response and in the commitment. */
  readonly recordId: string;
  /** Stream index of the message's first number. */
  readonly offset: number;
  readonly numbers: BulkNumbers;
}

export interface BulkIssued {
  /** The IssueCodesResponse, encoded. Its record_id is empty when no number was valid (then no record). */
  readonly response: Uint8Array;
  /** Codes issued (valid numbers, repeats included). */
  readonly issued: number;
  /**
   * The record's persons: sorted distinct raw subject keys (persons-run.ts). Empty when nothing was issued.
   * `response`, `run` and `commitment` each own their ArrayBuffer, so a worker can move them.
   */
  readonly run: PersonsRun;
  /** `runCommitment(recordId, run)`, 32 bytes (empty when nothing was issued). */
  readonly commitment: Uint8Array;
}

export function bulkCount(numbers: BulkNumbers): number {
  return 'strings' in numbers ? numbers.strings.length : numbers.count;
}

const WEIGHTS = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2] as const;
const DIGITS = 12;
const OK_BYTES = okResultBytes(CODE_LENGTH);
const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * The value of 12 ASCII digits at `at` whose check digit matches and that are not all zeros, else -1: the
 * cases where checkPersonalNumber says ok (anything else goes the slow way, through the string).
 */
function fastValue(b: Uint8Array, at: number): number {
  let value = 0;
  let sum = 0;
  for (let i = 0; i < 11; i++) {
    const d = b[at + i]! - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
    sum += d * WEIGHTS[i]!;
  }
  const last = b[at + 11]! - 48;
  if (last < 0 || last > 9) return -1;
  const r = sum % 11;
  if ((r <= 1 ? 0 : 11 - r) !== last) return -1;
  value = value * 10 + last;
  return value === 0 ? -1 : value;
}

export function issueBulkBatch(codec: AgencyCodec, subjects: SubjectKeys, task: BulkTask): BulkIssued {
  const input = task.numbers;
  const count = bulkCount(input);
  let spans: Uint32Array | null = null;
  if ('bytes' in input) {
    spans = new Uint32Array(2 * count);
    if (scanIssueCodesRequest(input.bytes, spans) !== count) throw new RangeError('the request does not hold the numbers it was scanned with');
  }
  const values = new Float64Array(count);
  /** Per item: its UTF-8 error text, or undefined when it is valid. Only made when some item is not. */
  let errors: (Uint8Array | undefined)[] | null = null;
  const texts = new Map<string, Uint8Array>();
  let issued = 0;
  let size = 0;
  for (let i = 0; i < count; i++) {
    let value = -1;
    let text: string | undefined;
    if (spans) {
      const at = spans[2 * i]!;
      const len = spans[2 * i + 1]!;
      if (len === DIGITS) value = fastValue((input as { bytes: Uint8Array }).bytes, at);
      if (value < 0) text = numberText((input as { bytes: Uint8Array }).bytes, at, len);
    } else text = (input as { strings: readonly string[] }).strings[i]!;
    if (text !== undefined) {
      const c = checkPersonalNumber(text);
      if (c.ok) value = c.value;
      else {
        const problem = personalNumberProblem(text)!;
        let bytes = texts.get(problem);
        if (!bytes) texts.set(problem, (bytes = utf8.encode(problem)));
        errors ??= new Array<Uint8Array | undefined>(count);
        errors[i] = bytes;
        size += errorResultBytes(bytes);
        continue;
      }
    }
    values[issued++] = value;
    size += OK_BYTES;
  }
  const valid = values.subarray(0, issued);
  const codes = issued > 0 ? codec.encodeManyRaw(task.agency, valid) : EMPTY;
  const run = issued > 0 ? runOf(subjects.rawMany(valid)) : new Uint8Array(0);
  values.fill(0);
  const commitment = issued > 0 ? new Uint8Array(runCommitment(task.recordId, run)) : new Uint8Array(0);
  const id = issued > 0 ? utf8.encode(task.recordId) : EMPTY;

  size += offsetBytes(task.offset) + recordIdBytes(id);
  const out = new Uint8Array(size);
  let at = writeOffset(out, 0, task.offset);
  for (let i = 0, j = 0; i < count; i++) {
    const error = errors?.[i];
    if (error) at = writeErrorResult(out, at, error);
    else {
      at = writeOkResultHead(out, at, CODE_LENGTH);
      at = base32EncodeInto(codes, j++ * CODE_BYTES, CODE_BYTES, out, at);
    }
  }
  at = writeRecordId(out, at, id);
  if (at !== size) throw new Error(`bulk response size: wrote ${at} of ${size} bytes`);
  if (codes !== EMPTY) codes.fill(0);
  return { response: out, issued, run, commitment };
}
