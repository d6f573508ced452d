/**
 * The input of `linkgw client AGENCY issue-bulk`: one number a line, or CSV with a header row that names the
 * number's column (`personal_number`, `number`, … or the name given with --column). Read line by line, never
 * whole: each row comes out with its line number (1-based, counting every physical line, blank ones and the
 * header included), so results can be matched to the input and a run resumed from a line.
 *
 * Blank lines are skipped. A row that cannot be read (a CSV row without the number's column, an unterminated
 * quote, an empty cell) comes out with its problem and is never sent. Numbers are passed on as written (the
 * gateway checks them and says what is wrong, without echoing them). Quoted CSV fields may hold commas and
 * doubled quotes, but not line breaks: a record is one line.
 */
import { UsageError } from './command.js';

export type InputRow = { readonly line: number; readonly number: string } | { readonly line: number; readonly problem: string };

/** Header names taken for the number's column, in order of preference (compared without case, spaces, _ or -). */
const NUMBER_COLUMNS = ['personalnumber', 'mynumber', 'individualnumber', '個人番号', 'number', 'no'];

const normal = (s: string) => s.toLowerCase().replace(/[\s_\-.]/g, '');

/** Splits one CSV line into cells (RFC 4180 quoting within the line); null for an unterminated quote. */
export function csvCells(line: string): string[] | null {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return null;
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(',', i);
      // Text between the closing quote and the comma (only spaces are usual) is kept.
      v += line.slice(i, comma < 0 ? line.length : comma).trim();
      cells.push(v);
      if (comma < 0) return cells;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      cells.push(line.slice(i, comma < 0 ? line.length : comma));
      if (comma < 0) return cells;
      i = comma + 1;
    }
  }
}

const looksLikeNumber = (cell: string) => /^[\d\s-]+$/.test(cell.trim());

/** Which column of a header holds the number: the one named `column`, or the first with a usual name. */
function numberColumn(header: readonly string[], column: string | undefined): number {
  const names = header.map(normal);
  if (column !== undefined) {
    const i = names.indexOf(normal(column));
    if (i < 0) throw new UsageError(`--column: no column "${column}" in the header (${header.map((h) => JSON.stringify(h.trim())).join(', ')})`);
    return i;
  }
  for (const want of NUMBER_COLUMNS) {
    const i = names.indexOf(want);
    if (i >= 0) return i;
  }
  throw new UsageError(`no column of the header is named like personal_number or number (${header.map((h) => JSON.stringify(h.trim())).join(', ')}); name it with --column`);
}

export interface ReadOptions {
  /** The header name of the number's column (the input is then CSV with a header). */
  readonly column?: string;
  /** The first line to issue; lines before it are read (the header included) but not issued. */
  readonly resumeFrom?: number;
}

/** Rows from lines, in order; the header row and blank lines yield nothing. */
export async function* readNumbers(lines: AsyncIterable<string>, o: ReadOptions = {}): AsyncGenerator<InputRow> {
  const from = o.resumeFrom ?? 1;
  let line = 0;
  let mode: 'unknown' | 'plain' | 'csv' = 'unknown';
  let col = 0;
  for await (let text of lines) {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') continue;
    if (mode === 'unknown') {
      const cells = csvCells(text);
      // A header: --column was given, a cell has a usual name, or several cells are not all numbers. A single
      // cell that is neither a usual name nor a number is a bad row of a plain file, for the gateway to judge.
      const header = cells !== null && (cells.some((c) => NUMBER_COLUMNS.includes(normal(c))) || (cells.length > 1 && !cells.every(looksLikeNumber)));
      if (o.column !== undefined || header) {
        if (cells === null) throw new UsageError(`line ${line}: the header has an unterminated quote`);
        col = numberColumn(cells, o.column);
        mode = 'csv';
        continue;
      }
      if (cells !== null && cells.length > 1) throw new UsageError(`line ${line}: several columns but no header; add a header row naming the number's column`);
      mode = 'plain';
    }
    if (line < from) continue;
    if (mode === 'plain') {
      yield { line, number: text.trim() };
      continue;
    }
    const cells = csvCells(text);
    if (cells === null) yield { line, problem: 'malformed CSV row: unterminated quote' };
    else if (cells.length <= col) yield { line, problem: `malformed CSV row: ${cells.length} column${cells.length === 1 ? '' : 's'}, the number is in column ${col + 1}` };
    else if (cells[col]!.trim() === '') yield { line, problem: 'no number in the row' };
    else yield { line, number: cells[col]!.trim() };
  }
}
