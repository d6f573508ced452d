/**
 * A one-line progress bar on a terminal: redrawn in place at most every 100 ms, cleared at the end. Only made
 * when standard error is a TTY, so logs and pipes never get carriage returns.
 */
import type { BulkProgress, BulkSummary } from './issue-bulk.js';

export interface ProgressSource {
  /** Bytes of the input read so far, and its size when known (a file), for the percentage. */
  readonly bytes: () => number;
  readonly total: number | undefined;
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function terminalProgress(tty: NodeJS.WriteStream, src: ProgressSource): BulkProgress {
  const started = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(s: Readonly<BulkSummary>) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const rate = s.rows / Math.max(0.001, (now - started) / 1000);
      let bar = '';
      if (src.total) {
        const share = Math.min(1, src.bytes() / src.total);
        const width = 24;
        const full = Math.round(share * width);
        bar = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(share * 100)).padStart(3)}%  `;
      }
      const text = `${bar}${fmt(s.issued)} issued, ${fmt(s.failed)} failed, ${fmt(Math.round(rate))}/s`;
      tty.write(`\r${text.slice(0, Math.max(10, (tty.columns || 80) - 1))}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) tty.write('\r\x1b[K');
    },
  };
}
