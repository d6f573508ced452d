/**
 * How commands print: JSON lines (`--json`: one object per line, for programs) or a human format (aligned
 * fields, tables). Statuses are printed by name (NOT_FOUND), never by number.
 */
import type { Writable } from 'node:stream';

export interface Timestamp {
  readonly seconds: bigint;
  readonly nanos: number;
}

export function isoTime(t: Timestamp | undefined): string | null {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : null;
}

export function jsonLine(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : x)) + '\n';
}

export class Printer {
  constructor(
    readonly json: boolean,
    readonly out: Writable = process.stdout,
  ) {}

  write(text: string): void {
    this.out.write(text);
  }

  /** One object: a JSON line, or aligned `label  value` lines (labels are the keys, or `labels[key]`). */
  object(v: object, labels: Readonly<Record<string, string>> = {}): void {
    if (this.json) return this.write(jsonLine(v));
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined && x !== null && x !== '');
    const width = Math.max(0, ...entries.map(([k]) => (labels[k] ?? k).length));
    for (const [k, x] of entries) this.write(`${(labels[k] ?? k).padEnd(width)}  ${typeof x === 'object' ? JSON.stringify(x) : String(x)}\n`);
  }

  /** Rows: JSON lines, or a table with these columns (header in capitals; empty cells as "-"). */
  rows(rows: readonly object[], columns: readonly (readonly [key: string, header: string])[]): void {
    if (this.json) {
      for (const r of rows) this.write(jsonLine(r));
      return;
    }
    const cells = rows.map((row) => {
      const r = row as Record<string, unknown>;
      return columns.map(([k]) => (r[k] === undefined || r[k] === null || r[k] === '' ? '-' : String(r[k])));
    });
    const widths = columns.map(([, h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: readonly string[]) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!))).join('  ') + '\n';
    this.write(line(columns.map(([, h]) => h)));
    for (const c of cells) this.write(line(c));
  }
}
