/**
 * `linkgw client AGENCY COMMAND`: act as one agency towards a running gateway, with that agency's certificate
 * (client-target.ts says how the gateway and the certificate are found). To add a command, add an entry to
 * `commands` below with `command({ summary, usage, args, options, run })`.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { toJsonString } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { Direction } from '../../gen/linkage/v1/gateway_pb.js';
import { AccessRecordSchema, Outcome, type AccessRecord } from '../../gen/linkage/v1/records_pb.js';
import { statusName } from '../../grpc/status.js';
import type { AgencyClient } from '../agency-client.js';
import { readNumbers } from '../bulk-input.js';
import { connect, CLIENT_OPTIONS, resolveTarget, type TargetOptions } from '../client-target.js';
import { CliError, command, EXIT, intOption, UsageError, type CommandGroup, type Invocation, type OptionSpecs } from '../command.js';
import { issueBulk, type BulkFormat } from '../issue-bulk.js';
import { isoTime, Printer } from '../output.js';
import { terminalProgress } from '../progress.js';

const JSON_OPTION = { json: { type: 'boolean', doc: 'JSON lines (one object a line) instead of the human format' } } as const satisfies OptionSpecs;

/** Runs `fn` with a client for the invocation's agency; a gRPC error becomes a one-line failure with its status name. */
async function withClient<T>(inv: Invocation<OptionSpecs>, fn: (c: AgencyClient) => Promise<T>): Promise<T> {
  const c = connect(resolveTarget(inv.scope[0]!, inv.options as TargetOptions));
  try {
    return await fn(c);
  } catch (e) {
    const err = e as { code?: unknown; details?: string };
    if (typeof err.code === 'number') throw new CliError(`${err.details || 'call failed'} (${statusName(err.code)})`);
    throw e;
  } finally {
    c.close();
  }
}

async function firstLine(): Promise<string | undefined> {
  for await (const line of createInterface({ input: process.stdin })) if (line.trim()) return line.trim();
  return undefined;
}

function time(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (!Number.isFinite(t)) throw new UsageError(`--${name}: an ISO 8601 time such as 2025-04-01T00:00:00Z, not "${value}"`);
  return t;
}

const outcomeName = (o: Outcome) => Outcome[o] ?? String(o);

function recordRow(r: AccessRecord) {
  return {
    recordId: r.recordId,
    requestedAt: isoTime(r.requestedAt),
    providedAt: isoTime(r.providedAt),
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    item: r.item,
    legalBasisRow: r.legalBasisRow,
    outcome: outcomeName(r.outcome),
    cursor: r.cursor,
  };
}

const issue = command({
  summary: "issue AGENCY's code for a personal number",
  usage: 'NUMBER|-',
  details: '- reads the number from standard input, keeping it out of the process list and shell history.',
  args: { min: 1, max: 1 },
  options: JSON_OPTION,
  run: (inv) =>
    withClient(inv, async (c) => {
      const number = inv.args[0] === '-' ? await firstLine() : inv.args[0];
      if (!number) throw new UsageError('no number on standard input');
      const r = await c.issueCode(number);
      new Printer(inv.options.json).object({ code: r.code, recordId: r.recordId }, { recordId: 'record' });
    }),
});

const issueBulkCommand = command({
  summary: 'issue codes for every number of a file (or standard input), streaming',
  usage: '[FILE|-]',
  details: [
    'Input: one number a line, or CSV with a header row naming the number column (personal_number, number, …;',
    'or --column NAME). Blank lines are skipped. Each result carries its input line number (every line counts,',
    'the header and blank ones too) and never the number:',
    '  jsonl  {"line":2,"code":"…"}  {"line":3,"status":"INVALID_ARGUMENT","error":"…"}',
    '  csv    line,code,status,error',
    'Results are written as they arrive, in line order. A summary (issued, failed by reason) goes to standard',
    'error, with a progress bar when standard error is a terminal. Exit status 1 when any row failed or the run',
    'stopped early; then it says the line to go on from: --resume-from LINE (append to the same output; no CSV',
    'header is written when resuming).',
  ].join('\n'),
  args: { min: 0, max: 1 },
  options: {
    column: { type: 'string', value: 'NAME', doc: 'the CSV column holding the number (the input then has a header row)' },
    format: { type: 'string', value: 'jsonl|csv', doc: 'output format (default jsonl)' },
    'resume-from': { type: 'string', value: 'LINE', doc: 'issue from this input line on (the lines before are read, not sent)' },
    'batch-size': { type: 'string', value: 'N', doc: 'numbers a stream message (default 1000, at most 10000)' },
  },
  run: async (inv) => {
    const format = (inv.options.format ?? 'jsonl') as BulkFormat;
    if (format !== 'jsonl' && format !== 'csv') throw new UsageError(`--format: jsonl or csv, not "${inv.options.format}"`);
    const resumeFrom = intOption(inv.options['resume-from'], 'resume-from', { min: 1 });
    const batchSize = intOption(inv.options['batch-size'], 'batch-size', { min: 1, max: 10_000 }) ?? 1000;
    const file = inv.args[0] === undefined || inv.args[0] === '-' ? undefined : inv.args[0];
    let total: number | undefined;
    if (file !== undefined) {
      try {
        total = statSync(file).size;
      } catch (e) {
        throw new CliError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e)}`);
      }
    }
    return withClient(inv, async (c) => {
      const input = file !== undefined ? createReadStream(file) : process.stdin;
      if (file === undefined && process.stdin.isTTY) process.stderr.write('linkgw: reading numbers from the terminal, one a line; end with Ctrl-D\n');
      const rows = readNumbers(createInterface({ input, crlfDelay: Infinity }), { ...(inv.options.column !== undefined ? { column: inv.options.column } : {}), ...(resumeFrom ? { resumeFrom } : {}) });
      const stop = new AbortController();
      const onSigint = () => stop.abort();
      process.once('SIGINT', onSigint);
      const progress = process.stderr.isTTY
        ? terminalProgress(process.stderr, { bytes: () => (input as { bytesRead?: number }).bytesRead ?? 0, total })
        : undefined;
      try {
        const s = await issueBulk(() => c.issueStream(Infinity), rows, process.stdout, {
          format,
          batchSize,
          csvHeader: resumeFrom === undefined,
          signal: stop.signal,
          ...(progress ? { progress } : {}),
        });
        const err = process.stderr;
        err.write(`linkgw: issue-bulk: ${s.rows} rows, ${s.issued} issued, ${s.failed} failed\n`);
        for (const [reason, n] of [...s.reasons].sort((a, b) => b[1] - a[1])) err.write(`linkgw:   ${String(n).padStart(8)}  ${reason}\n`);
        if (s.stopped !== undefined) {
          err.write(`linkgw: issue-bulk stopped: ${s.stopped}${s.resumeFrom !== undefined ? `; go on with --resume-from ${s.resumeFrom}` : ''}\n`);
          return s.stopped === 'interrupted' ? 130 : EXIT.failure;
        }
        return s.failed > 0 ? EXIT.failure : EXIT.ok;
      } finally {
        process.removeListener('SIGINT', onSigint);
        if (input !== process.stdin) (input as { destroy(): void }).destroy();
      }
    });
  },
});

const query = command({
  summary: 'ask PROVIDER for ITEM about the person AGENCY knows as CODE, for PROCEDURE',
  usage: 'CODE PROVIDER PROCEDURE ITEM',
  args: { min: 4, max: 4 },
  options: { ...JSON_OPTION, 'request-id': { type: 'string', value: 'ID', doc: 'x-request-id: a retry with the same id replays the first outcome' } },
  run: (inv) =>
    withClient(inv, async (c) => {
      const [code, provider, procedure, item] = inv.args as [string, string, string, string];
      const r = await c.queryInformation({ code, provider, procedure, item }, inv.options['request-id'] ? { requestId: inv.options['request-id'] } : {});
      new Printer(inv.options.json).object(
        { recordId: r.recordId, legalBasisRow: r.legalBasisRow, contentType: r.contentType, payload: Buffer.from(r.payload).toString('utf8') },
        { recordId: 'record', legalBasisRow: 'legal basis', contentType: 'content type' },
      );
    }),
});

const reportWrongBinding = command({
  summary: 'report that AGENCY bound CODE to the wrong local record; lists the exchanges since then about the person',
  usage: 'CODE',
  args: { min: 1, max: 1 },
  options: { ...JSON_OPTION, since: { type: 'string', value: 'ISO-TIME', doc: 'when the wrong binding began (default: from the first record)' } },
  run: (inv) => {
    const since = time(inv.options.since, 'since');
    return withClient(inv, async (c) => {
      const r = await c.reportWrongBinding(inv.args[0]!, since);
      const p = new Printer(inv.options.json);
      p.object({ recordId: r.recordId, truncated: r.truncated }, { recordId: 'report record' });
      const rows = r.affected.map((x) => ({
        recordId: x.recordId,
        requestedAt: isoTime(x.requestedAt),
        direction: x.direction === Direction.SENT ? 'sent' : 'received',
        requester: x.requester,
        provider: x.provider,
        procedure: x.procedure,
        item: x.item,
      }));
      if (!inv.options.json) p.write(rows.length ? '\n' : 'no exchange about the person in that time\n');
      if (rows.length || inv.options.json)
        p.rows(rows, [
          ['requestedAt', 'REQUESTED AT'],
          ['direction', 'DIRECTION'],
          ['requester', 'REQUESTER'],
          ['provider', 'PROVIDER'],
          ['procedure', 'PROCEDURE'],
          ['item', 'ITEM'],
          ['recordId', 'RECORD'],
        ]);
    });
  },
});

/**
 * A record as one JSON line in protobuf-es canonical proto3 JSON (bytes as base64), its proof included: the
 * format `linkgw records check-proof` reads and the citizen portal downloads.
 */
export function recordJsonLine(r: AccessRecord): string {
  return `${toJsonString(AccessRecordSchema, r)}\n`;
}

const recordProof = command({
  summary: 'a record and its inclusion proof by record id (GetRecordProof: its requester, its provider, or the disclosure agency)',
  usage: 'RECORD_ID',
  details: 'With --json, one line: the record as linkage.v1.AccessRecord in canonical proto3 JSON with its `proof`, the input of `linkgw records check-proof`. Keep it as the §23 copy of the exchange. A record newer than its log\'s latest checkpoint (about a second) has no proof yet: ask again.',
  args: { min: 1, max: 1 },
  options: JSON_OPTION,
  run: (inv) =>
    withClient(inv, async (c) => {
      const got = await c.recordProof(inv.args[0]!);
      const record = got.record;
      if (!record) throw new CliError('the gateway sent no record');
      if (got.proof) record.proof = got.proof;
      const p = new Printer(inv.options.json);
      if (inv.options.json) return p.write(recordJsonLine(record));
      const proof = record.proof;
      p.object({ ...recordRow(record), proof: proof ? `leaf ${proof.leafIndex} of ${proof.origin}, tree of ${proof.treeSize}` : 'none yet (newer than the latest checkpoint): ask again' });
    }),
});

const records = command({
  summary: "read a person's access records, newest first (the disclosure agency only)",
  usage: 'CODE',
  details: [
    'Paging: a page holds --page-size records (default 100, at most 1000). When a page is full there may be more:',
    "pass the last record's cursor as --page-token to read on (the human format prints the command's flag),",
    'or give --all to read every page. With --json each line is the record as linkage.v1.AccessRecord in canonical',
    'proto3 JSON with its inclusion proof (`proof`): keep the lines, check them with `linkgw records check-proof`.',
  ].join('\n'),
  args: { min: 1, max: 1 },
  options: {
    ...JSON_OPTION,
    'page-size': { type: 'string', value: 'N', doc: 'records a page (default 100, at most 1000)' },
    'page-token': { type: 'string', value: 'CURSOR', doc: 'read on after this cursor (the last record of the previous page)' },
    all: { type: 'boolean', doc: 'read every page' },
    from: { type: 'string', value: 'ISO-TIME', doc: 'records requested at or after this time' },
    to: { type: 'string', value: 'ISO-TIME', doc: 'records requested before this time' },
  },
  run: (inv) => {
    const pageSize = intOption(inv.options['page-size'], 'page-size', { min: 1, max: 1000 }) ?? 100;
    const from = time(inv.options.from, 'from');
    const to = time(inv.options.to, 'to');
    return withClient(inv, async (c) => {
      const p = new Printer(inv.options.json);
      let token = inv.options['page-token'] ?? '';
      const all: ReturnType<typeof recordRow>[] = [];
      for (;;) {
        const page = await c.listRecords({
          code: inv.args[0]!,
          pageSize,
          pageToken: token,
          ...(from !== undefined ? { from: timestampFromMs(from) } : {}),
          ...(to !== undefined ? { to: timestampFromMs(to) } : {}),
        });
        // JSON: each record as the API sends it, with its inclusion proof (what `records check-proof` reads).
        if (inv.options.json) for (const r of page) p.write(recordJsonLine(r));
        else all.push(...page.map(recordRow));
        const more = page.length === pageSize;
        token = page.at(-1)?.cursor ?? '';
        if (!more || !inv.options.all) {
          if (!inv.options.json) {
            p.rows(all, [
              ['requestedAt', 'REQUESTED AT'],
              ['requester', 'REQUESTER'],
              ['provider', 'PROVIDER'],
              ['procedure', 'PROCEDURE'],
              ['item', 'ITEM'],
              ['legalBasisRow', 'ROW'],
              ['outcome', 'OUTCOME'],
              ['recordId', 'RECORD'],
            ]);
            if (more) p.write(`more: --page-token ${token}\n`);
          }
          return;
        }
      }
    });
  },
});

export const clientGroup: CommandGroup = {
  name: 'client',
  summary: 'act as an agency towards a running gateway, with the agency\'s certificate',
  scope: ['AGENCY'],
  options: CLIENT_OPTIONS,
  details: [
    'Finding the gateway: --address, else $LINKGW_LISTEN (default 127.0.0.1:50051; a wildcard host such as',
    '0.0.0.0 is dialled on 127.0.0.1). The agency proves itself with --cert/--key, else the dev PKI that',
    '`linkgw serve` creates: $LINKGW_DATA_DIR/pki/AGENCY.crt and .key, checked against --ca or',
    '$LINKGW_DATA_DIR/pki/ca.crt. Errors name the gRPC status (NOT_FOUND, PERMISSION_DENIED, …); exit 1.',
  ].join('\n'),
  commands: {
    issue,
    'issue-bulk': issueBulkCommand,
    query,
    'report-wrong-binding': reportWrongBinding,
    records,
    'record-proof': recordProof,
  },
};
