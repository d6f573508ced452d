/**
 * The default engine: small calls (single requests) on the event loop, large calls (bulk batches) on the
 * worker pool. bench/micro/engine.bench.ts measured why (bench/results/micro-engine.md): one code costs ~2 µs
 * inline against a pool round trip of 50–140 µs (and ~1.7 µs of event-loop time per code even when 64 singles
 * are coalesced), while a batch of thousands costs the event loop 0.5–1.4 µs a code inline but only ~0.1 µs a
 * code pooled, and two threads map 10,000-number batches 2.5–3× faster than the loop does.
 */
import type { Decoded } from '../core/agency-code.js';
import { bulkCount, type BulkIssued, type BulkTask } from './bulk-batch.js';
import type { MappingEngine } from './mapping-engine.js';

export class AutoEngine implements MappingEngine {
  readonly kind = 'auto' as const;

  constructor(
    private readonly inline: MappingEngine,
    private readonly pool: MappingEngine,
    /** Calls with at least this many items go to the pool. */
    private readonly threshold = 256,
  ) {
    const small = inline.issueBulk;
    const large = pool.issueBulk;
    if (small && large) this.issueBulk = (task, signal) => (bulkCount(task.numbers) >= this.threshold ? large : small)(task, signal);
  }

  readonly issueBulk?: (task: BulkTask, signal?: AbortSignal) => Promise<BulkIssued>;

  issue(agency: string, numbers: readonly number[], signal?: AbortSignal): Promise<string[]> {
    return (numbers.length >= this.threshold ? this.pool : this.inline).issue(agency, numbers, signal);
  }

  decode(agency: string, codes: readonly string[], signal?: AbortSignal): Promise<Decoded[]> {
    return (codes.length >= this.threshold ? this.pool : this.inline).decode(agency, codes, signal);
  }

  async close(): Promise<void> {
    await Promise.all([this.inline.close(), this.pool.close()]);
  }
}
