/**
 * `linkgw client AGENCY issue-bulk` as an agency onboards a population file: a child process against a real
 * `linkgw serve`, on 100,000 lines with a header, blank lines, bad rows and a repeated number. Results come
 * back by input line, the summary counts them by reason, the exit status says that rows failed, memory stays
 * flat as the file grows (measured inside the child), and an interrupted run resumes from the line it names.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/gateway-harness.js';
import { population, withBadCheckDigit } from '../helpers/population.js';
import { killServed, serve } from '../helpers/serve-process.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const PEAK = join(import.meta.dirname, '..', 'helpers', 'peak-memory.mjs');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let env: Record<string, string>;
let dir: string;

/** Runs linkgw in a child; `onFirstOutput` is called once with the child when stdout first has data. */
function linkgw(args: string[], o: { stdin?: string; node?: string[]; extraEnv?: Record<string, string>; onFirstOutput?: (child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(o.node ?? []), BIN, ...args], { env: { ...process.env, ...env, ...o.extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let first = true;
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      if (first && o.onFirstOutput) o.onFirstOutput(child);
      first = false;
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(o.stdin ?? '');
  });
}

type Expect = { kind: 'ok'; number: string } | { kind: 'bad'; error: RegExp };

/** The population file: header, then rows of name,personal_number; returns the file and what each line should give. */
function populationFile(lines: number): { file: string; expected: Map<number, Expect>; numbers: Set<string> } {
  const people = population(lines, 16);
  const rows = ['name,personal_number'];
  const expected = new Map<number, Expect>();
  const numbers = new Set<string>();
  for (let line = 2; line <= lines; line++) {
    const n = people[line]!;
    let text: string;
    if (line % 1000 === 0) text = ''; // blank: skipped, no result
    else if (line % 997 === 0) {
      text = `bad-check-digit,${withBadCheckDigit(n)}`;
      expected.set(line, { kind: 'bad', error: /check digit/ });
    } else if (line % 1999 === 0) {
      text = `short,${n.slice(0, 11)}`;
      expected.set(line, { kind: 'bad', error: /exactly 12 digits/ });
    } else if (line === 4321) {
      text = 'only-one-column';
      expected.set(line, { kind: 'bad', error: /^malformed CSV row: 1 column, the number is in column 2$/ });
    } else if (line === 4322) {
      text = 'empty-cell,';
      expected.set(line, { kind: 'bad', error: /^no number in the row$/ });
    } else if (line === 90_001) {
      // The number of line 10 again: the same person, the same code.
      text = `repeated,${people[10]!}`;
      expected.set(line, { kind: 'ok', number: people[10]! });
    } else {
      // A quoted name with a comma and a doubled quote now and then.
      text = line % 101 === 0 ? `"Yamada, ""Taro"" ${line}",${n}` : `p${line},${n}`;
      expected.set(line, { kind: 'ok', number: n });
      numbers.add(n);
    }
    rows.push(text);
  }
  const file = join(dir, `population-${lines}.csv`);
  writeFileSync(file, rows.join('\r\n') + '\r\n');
  return { file, expected, numbers };
}

function results(stdout: string): { line: number; code?: string; status?: string; error?: string }[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { line: number; code?: string; status?: string; error?: string });
}

beforeAll(async () => {
  dir = tempDir('linkgw-bulk-');
  const gw = await serve({ LINKGW_DATA_DIR: dir });
  env = { LINKGW_DATA_DIR: dir, LINKGW_LISTEN: gw.address };
});
afterAll(() => {
  killServed();
  rmSync(dir, { recursive: true, force: true });
});

describe('linkgw client AGENCY issue-bulk', () => {
  const codes = new Map<number, string>();
  let big: ReturnType<typeof populationFile>;

  it('issues a 100,000-line file: every row answered by line, a summary by reason, exit 1, flat memory', async () => {
    big = populationFile(100_000);
    const peak = join(dir, 'peak-100k.json');
    const r = await linkgw(['client', 'pension', 'issue-bulk', big.file], { node: ['--expose-gc', '--import', PEAK], extraEnv: { PEAK_MEMORY_FILE: peak } });
    expect(r.status, r.stderr).toBe(1);
    const got = results(r.stdout);
    expect(got.map((x) => x.line)).toEqual([...big.expected.keys()]);
    let bad = 0;
    for (const x of got) {
      const want = big.expected.get(x.line)!;
      if (want.kind === 'ok') {
        expect(x.code, `line ${x.line}`).toMatch(/^[0-9A-Z]{28}$/);
        codes.set(x.line, x.code!);
      } else {
        bad++;
        expect(x.status, `line ${x.line}`).toBe('INVALID_ARGUMENT');
        expect(x.error, `line ${x.line}`).toMatch(want.error);
      }
    }
    expect(codes.get(90_001)).toBe(codes.get(10));
    // No personal number of the file comes back; the line is the key.
    for (const m of r.stdout.matchAll(/\d{12}/g)) expect(big.numbers.has(m[0])).toBe(false);

    const rows = big.expected.size;
    const checkDigit = got.filter((x) => /check digit/.test(x.error ?? '')).length;
    const short = got.filter((x) => /12 digits/.test(x.error ?? '')).length;
    expect(checkDigit).toBeGreaterThan(50);
    expect(short).toBeGreaterThan(20);
    expect(r.stderr).toContain(`linkgw: issue-bulk: ${rows} rows, ${rows - bad} issued, ${bad} failed\n`);
    expect(r.stderr).toMatch(new RegExp(`\\s${checkDigit}  INVALID_ARGUMENT: the check digit of the personal number does not match\\n`));
    expect(r.stderr).toMatch(new RegExp(`\\s${short}  INVALID_ARGUMENT: a personal number has exactly 12 digits\\n`));
    expect(r.stderr).toMatch(/\s1  INVALID_ARGUMENT: malformed CSV row: 1 column, the number is in column 2\n/);
    // stderr is not a terminal here: no progress bar, no carriage return.
    expect(r.stderr).not.toContain('\r');

    // The same command on 1,000 lines: what the child holds at its peak (garbage collected before each sample)
    // must not grow with the file. Holding the results in memory grew it by 17 MB at 100,000 lines; streaming
    // by under 1 MB (measured on this machine).
    const small = populationFile(1_000);
    const peakSmall = join(dir, 'peak-1k.json');
    await linkgw(['client', 'pension', 'issue-bulk', small.file], { node: ['--expose-gc', '--import', PEAK], extraEnv: { PEAK_MEMORY_FILE: peakSmall } });
    const m = JSON.parse(readFileSync(peak, 'utf8')) as { liveHeap: number; maxRss: number };
    const s = JSON.parse(readFileSync(peakSmall, 'utf8')) as { liveHeap: number; maxRss: number };
    console.log(`issue-bulk peak live heap: ${(s.liveHeap / 2 ** 20).toFixed(1)} MiB at 1,000 lines, ${(m.liveHeap / 2 ** 20).toFixed(1)} MiB at 100,000; max RSS ${(s.maxRss / 2 ** 20).toFixed(0)} / ${(m.maxRss / 2 ** 20).toFixed(0)} MiB`);
    expect(m.liveHeap - s.liveHeap).toBeLessThan(6 * 2 ** 20);
  }, 180_000);

  it('stops on SIGINT, names the line to go on from, and --resume-from finishes the file with the same codes', async () => {
    const first = await linkgw(['client', 'pension', 'issue-bulk', big.file], { onFirstOutput: (child) => child.kill('SIGINT') });
    expect(first.status, first.stderr).toBe(130);
    const m = /issue-bulk stopped: interrupted; go on with --resume-from (\d+)\n/.exec(first.stderr);
    expect(m, first.stderr).not.toBeNull();
    const from = Number(m![1]);
    const before = results(first.stdout);
    // Every row before the line has its result, and none from it on.
    expect(before.map((x) => x.line)).toEqual([...big.expected.keys()].filter((l) => l < from));
    expect(from).toBeLessThan(100_000);

    const rest = await linkgw(['client', 'pension', 'issue-bulk', big.file, '--resume-from', String(from), '--format', 'csv']);
    expect(rest.status).toBe(1);
    const csv = rest.stdout.split('\n').filter(Boolean);
    // Appending to the first run's output: no header row.
    expect(csv[0]).toMatch(/^\d+,/);
    const after = csv.map((l) => {
      const [line, code, status] = l.split(',');
      return { line: Number(line), code, status };
    });
    expect([...before.map((x) => x.line), ...after.map((x) => x.line)]).toEqual([...big.expected.keys()]);
    for (const x of [...before, ...after]) if (codes.has(x.line)) expect(x.code).toBe(codes.get(x.line));
    expect(after.find((x) => x.line === 4321)).toEqual({ line: 4321, code: '', status: 'INVALID_ARGUMENT' });
  }, 180_000);

  it('reads one number a line from standard input, and exits 0 when every row was issued', async () => {
    const people = population(5, 3);
    const ok = await linkgw(['client', 'tax', 'issue-bulk', '-', '--format', 'csv'], { stdin: `${people[0]}\n\n${people[1]}\n${people[2]}\n` });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^line,code,status,error\n1,[0-9A-Z]{28},OK,\n3,[0-9A-Z]{28},OK,\n4,[0-9A-Z]{28},OK,\n$/);
    expect(ok.stderr).toBe('linkgw: issue-bulk: 3 rows, 3 issued, 0 failed\n');
    const bad = await linkgw(['client', 'tax', 'issue-bulk'], { stdin: `${people[3]}\n12345678901x\n` });
    expect(bad.status).toBe(1);
    expect(results(bad.stdout)).toEqual([
      { line: 1, code: expect.stringMatching(/^[0-9A-Z]{28}$/) },
      { line: 2, status: 'INVALID_ARGUMENT', error: 'a personal number has only the ASCII digits 0-9' },
    ]);
  });

  it('refuses input it cannot read, and bad options, with exit 2', async () => {
    const noColumn = join(dir, 'no-column.csv');
    writeFileSync(noColumn, 'name,birth\nx,y\n');
    let r = await linkgw(['client', 'pension', 'issue-bulk', noColumn]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no column of the header is named like personal_number or number \("name", "birth"\); name it with --column/);
    r = await linkgw(['client', 'pension', 'issue-bulk', noColumn, '--column', 'kojin']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--column: no column "kojin" in the header/);
    r = await linkgw(['client', 'pension', 'issue-bulk', big.file, '--format', 'xml']);
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/--format: jsonl or csv, not "xml"/)]);
    r = await linkgw(['client', 'pension', 'issue-bulk', big.file, '--resume-from', 'ten']);
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/--resume-from: a whole number of at least 1, not "ten"/)]);
    r = await linkgw(['client', 'pension', 'issue-bulk', join(dir, 'missing.csv')]);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/missing\.csv: no such file/)]);
  });
});
