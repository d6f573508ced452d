/**
 * Bulk issuance from a file as it streams: rows are read, sent in batches on one IssueCodes stream, and each
 * result is written as soon as its batch is answered, with its input line number. Nothing grows with the
 * file:
 *   - at most `window` batches are unanswered at a time (the server works on 4 at once and pauses reading
 *     beyond that, so more would only sit in buffers), and a batch waits for `write()` to drain: the input is
 *     read only as fast as the gateway answers;
 *   - when the output cannot keep up (a slow pipe), the response stream is paused until it drains, so HTTP/2
 *     flow control holds the gateway back instead of this process buffering its answers.
 * Rows that could not be read (see bulk-input.ts) get their result in line order, without being sent.
 *
 * Results, one per input row, in line order: JSON lines {"line":N,"code":"…"} or
 * {"line":N,"status":"INVALID_ARGUMENT","error":"…"}, or CSV `line,code,status,error`. They never hold the
 * personal number: the line number is the key back to the input.
 */
import { create } from '@bufbuild/protobuf';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { Writable } from 'node:stream';
import { IssueCodesRequestSchema, type IssueCodesRequest, type IssueCodesResponse } from '../gen/linkage/v1/gateway_pb.js';
import { statusName } from '../grpc/status.js';
import type { InputRow } from './bulk-input.js';
import { jsonLine } from './output.js';

export type BulkFormat = 'jsonl' | 'csv';

export interface BulkResult {
  readonly line: number;
  readonly code?: string;
  readonly status: string;
  readonly error?: string;
}

export interface BulkSummary {
  /** Rows read and answered (issued + failed). */
  rows: number;
  issued: number;
  failed: number;
  /** Failures by status and reason, e.g. "INVALID_ARGUMENT: the check digit … does not match" → 3. */
  readonly reasons: Map<string, number>;
  /** The first line without a result when the run stopped early (resume from it), else undefined. */
  resumeFrom: number | undefined;
  /** Why the run stopped early. */
  stopped: string | undefined;
}

export interface BulkProgress {
  update(s: Readonly<BulkSummary>): void;
  done(): void;
}

export interface BulkOptions {
  readonly batchSize?: number;
  readonly window?: number;
  readonly format?: BulkFormat;
  /** Write the CSV header row (not when appending to the output of an interrupted run). */
  readonly csvHeader?: boolean;
  readonly progress?: BulkProgress;
  /** Aborting stops sending, cancels the stream and reports where to resume. */
  readonly signal?: AbortSignal;
}

function csvField(v: string | undefined): string {
  if (v === undefined) return '';
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function formatResult(r: BulkResult, format: BulkFormat): string {
  if (format === 'csv') return `${r.line},${csvField(r.code)},${r.status},${csvField(r.error)}\n`;
  return jsonLine(r.code !== undefined ? { line: r.line, code: r.code } : { line: r.line, status: r.status, error: r.error });
}

type Pending = { kind: 'local'; line: number; problem: string } | { kind: 'batch'; lines: Int32Array; offset: number };

/** Runs the stream `open()` gives over `rows`, writing results to `out`. */
export async function issueBulk(
  open: () => ClientDuplexStream<IssueCodesRequest, IssueCodesResponse>,
  rows: AsyncIterable<InputRow>,
  out: Writable,
  o: BulkOptions = {},
): Promise<BulkSummary> {
  const batchSize = o.batchSize ?? 1000;
  const window = o.window ?? 8;
  const format = o.format ?? 'jsonl';
  const summary: BulkSummary = { rows: 0, issued: 0, failed: 0, reasons: new Map(), resumeFrom: undefined, stopped: undefined };
  if (format === 'csv' && o.csvHeader !== false) out.write('line,code,status,error\n');

  const call = open();
  const queue: Pending[] = [];
  let batches = 0;
  let sentOffset = 0;
  let streamError: Error | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const until = async (ready: () => boolean) => {
    while (!ready() && !streamError && !ended && !o.signal?.aborted) await new Promise<void>((r) => (wake = r));
  };

  const emit = (r: BulkResult) => {
    summary.rows++;
    if (r.code !== undefined) summary.issued++;
    else {
      summary.failed++;
      const reason = `${r.status}: ${r.error ?? ''}`;
      summary.reasons.set(reason, (summary.reasons.get(reason) ?? 0) + 1);
    }
    if (!out.write(formatResult(r, format)) && !call.isPaused()) {
      call.pause();
      out.once('drain', () => call.resume());
    }
  };
  /** Writes the results at the head of the queue that are known: rows not sent, and the answered batch. */
  const flushLocal = () => {
    while (queue[0]?.kind === 'local') {
      const l = queue.shift() as Extract<Pending, { kind: 'local' }>;
      emit({ line: l.line, status: 'INVALID_ARGUMENT', error: l.problem });
    }
  };

  call.on('data', (res: IssueCodesResponse) => {
    // Once interrupted, answers still buffered in the stream (it may be paused for a slow output) are not
    // printed: the run stops at the first batch not printed, and --resume-from issues it again (same codes).
    if (o.signal?.aborted || streamError) return;
    flushLocal();
    const head = queue.shift();
    if (head?.kind !== 'batch' || BigInt(head.offset) !== res.offset || head.lines.length !== res.results.length) {
      streamError = new Error('the gateway answered a batch that was not the next one sent');
      call.cancel();
      notify();
      return;
    }
    batches--;
    res.results.forEach((x, i) => {
      const line = head.lines[i]!;
      emit(x.status === 0 ? { line, code: x.code, status: 'OK' } : { line, status: statusName(x.status), error: x.error });
    });
    flushLocal();
    o.progress?.update(summary);
    notify();
  });
  const finished = new Promise<void>((resolve) => {
    call.on('end', () => {
      ended = true;
      notify();
      resolve();
    });
    call.on('error', (e: Error & { code?: unknown; details?: string }) => {
      streamError ??= typeof e.code === 'number' ? new Error(`${e.details || e.message} (${statusName(e.code)})`) : e;
      ended = true;
      notify();
      resolve();
    });
  });
  const onAbort = () => {
    notify();
    call.cancel();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  let numbers: string[] = [];
  let lines: number[] = [];
  const send = async () => {
    if (numbers.length === 0) return;
    await until(() => batches < window);
    if (streamError || ended || o.signal?.aborted) return;
    queue.push({ kind: 'batch', lines: Int32Array.from(lines), offset: sentOffset });
    batches++;
    sentOffset += numbers.length;
    const ok = call.write(create(IssueCodesRequestSchema, { personalNumbers: numbers }));
    numbers = [];
    lines = [];
    if (!ok) await new Promise<void>((r) => call.once('drain', r));
  };

  /** The line of a row read but neither sent nor queued when the run stopped. */
  let unread: number | undefined;
  try {
    for await (const row of rows) {
      if (streamError || ended || o.signal?.aborted) {
        unread = row.line;
        break;
      }
      if ('problem' in row) {
        // Rows before it in the current batch are not sent yet: send them first, to keep results in line order.
        await send();
        queue.push({ kind: 'local', line: row.line, problem: row.problem });
        if (batches === 0) flushLocal();
        continue;
      }
      numbers.push(row.number);
      lines.push(row.line);
      if (numbers.length >= batchSize) await send();
    }
    await send();
  } finally {
    if (!streamError && !ended && !o.signal?.aborted) call.end();
    await until(() => batches === 0);
    if (!ended && !streamError) await finished;
    flushLocal();
    o.signal?.removeEventListener('abort', onAbort);
    o.progress?.done();
  }
  if (o.signal?.aborted) summary.stopped = 'interrupted';
  else if (streamError) summary.stopped = streamError.message;
  else if (queue.length) summary.stopped = 'the gateway ended the stream before answering every batch';
  if (summary.stopped !== undefined) {
    const head = queue[0];
    summary.resumeFrom = head ? (head.kind === 'batch' ? head.lines[0] : head.line) : (lines[0] ?? unread);
  }
  return summary;
}
