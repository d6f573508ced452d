/** The engine micro-benchmark's result format, and the Markdown table generated from it. */

export interface EngineBenchRow {
  /** 'single': one number per call; 'bulk': `batch` numbers per call. */
  readonly scenario: 'single' | 'bulk';
  readonly engine: 'inline' | 'pool';
  /** Worker threads (0 for inline). */
  readonly threads: number;
  /** Calls in flight at once (closed loop). */
  readonly inFlight: number;
  /** Numbers per call. */
  readonly batch: number;
  readonly calls: number;
  readonly codes: number;
  readonly seconds: number;
  readonly codesPerSecond: number;
  /** Wall time per call: seconds / calls. */
  readonly usPerCall: number;
  /** Event-loop (main thread) busy time per code: what the engine leaves for everything else. */
  readonly mainUsPerCode: number;
  /** Latency of a call from issue to answer. */
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface EngineBenchResult {
  readonly benchmark: 'micro-engine';
  readonly date: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly secondsPerRun: number;
  readonly rounds: number;
  readonly poolBatchSize: number;
  /** The 1-minute load average before and after: other work on the machine makes the figures noisy. */
  readonly loadAverage: readonly [before: number, after: number];
  /** Each row is the median (by codes/s) of `rounds` runs. */
  readonly rows: readonly EngineBenchRow[];
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function renderMarkdown(r: EngineBenchResult): string {
  const lines = [
    '# Mapping engine micro-benchmark',
    '',
    `Node ${r.node}, ${r.cpu} (${r.cores} cores), ${r.date}. Median of ${r.rounds} runs of ${r.secondsPerRun} s each, after ` +
      `warm-up; closed loop with the given number of calls in flight; pool tasks of at most ${r.poolBatchSize} numbers. ` +
      `Load average ${r.loadAverage[0].toFixed(2)} before, ${r.loadAverage[1].toFixed(2)} after.`,
    '`main µs/code` is event-loop busy time per code: the part of the work the gateway thread still does.',
    '',
    '| scenario | engine | threads | in flight | numbers/call | codes/s | µs/call | µs/code | main µs/code | p50 µs | p99 µs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const x of r.rows) {
    lines.push(
      `| ${x.scenario} | ${x.engine} | ${x.threads || '–'} | ${x.inFlight} | ${fmt(x.batch)} | ${fmt(x.codesPerSecond)} | ` +
        `${fmt(x.usPerCall, 1)} | ${fmt((x.seconds * 1e6) / x.codes, 3)} | ${fmt(x.mainUsPerCode, 3)} | ${fmt(x.p50Us, 0)} | ${fmt(x.p99Us, 0)} |`,
    );
  }
  return lines.join('\n') + '\n';
}
