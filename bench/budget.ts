/** The budget and profiles of bench/budget.json, typed. The one source of the numbers the run enforces. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(BENCH_DIR, '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const TMP_DIR = join(RESULTS_DIR, 'tmp');
export const BUDGET_FILE = join(BENCH_DIR, 'budget.json');

export type UnaryMethod = 'IssueCode' | 'QueryInformation' | 'ListAccessRecords';
export type ProfileName = 'issue' | 'query' | 'records' | 'bulk' | 'mixed' | 'capacity';
export type TargetKind = 'echo' | 'relay' | 'gateway';

export interface Grant {
  readonly provider: string;
  readonly procedure: string;
  readonly item: string;
}

export interface Target {
  readonly name: string;
  readonly kind: TargetKind;
  readonly title: string;
  readonly env?: Record<string, string>;
  readonly profiles: ProfileName[];
}

export interface Budget {
  readonly budget: {
    readonly IssueCode: { rate: number; p99Ms: number };
    readonly QueryInformation: { rate: number; p99Ms: number };
    readonly ListAccessRecords: { rate: number; p99Ms: number };
    readonly IssueCodes: { minCodesPerSecond: number };
    readonly checksPassRatio: number;
    readonly minAchievedRateRatio: number;
    readonly enforcedOn: string[];
  };
  /** Issue 11's goals, relative to the baselines of the same run: reported with their margins, not enforced. */
  readonly goals: {
    readonly cpuRatioMax: Partial<Record<'query' | 'issue', number>>;
    readonly p99RatioMax: Partial<Record<'query' | 'issue', number>>;
    readonly capacityRatioMin: Record<string, number>;
    readonly bulkCodesPerSecondMin: number;
    readonly bulkBatch: number;
  };
  readonly population: { persons: number; seed: number };
  readonly load: { connections: number; workers: number; timeoutSeconds: number; warmupSeconds: number; measureSeconds: number };
  readonly profiles: {
    readonly issue: { method: 'IssueCode'; agency: string };
    readonly query: { method: 'QueryInformation'; agency: string; grants: Grant[] };
    readonly records: { method: 'ListAccessRecords'; agency: string; pageSize: number; baselineRecordsPerList: number };
    readonly bulk: { method: 'IssueCodes'; agency: string; batch: number; batchesPerStream: number; streams: number; seconds: number };
    readonly mixed: {
      rate: number;
      shares: { name: 'query' | 'issue' | 'records' | 'denied'; share: number }[];
      denied: Grant & { expect: string };
    };
    readonly capacity: {
      methods: ('IssueCode' | 'QueryInformation')[];
      startRatioOfBudgetRate: number;
      factor: number;
      refineSteps: number;
      maxSteps: number;
      maxRate: number;
      warmupSeconds: number;
      measureSeconds: number;
    };
  };
  readonly targets: Target[];
  /** Node flags of every target process (gateway and baselines alike): the runtime settings linkgw ships with. */
  readonly nodeFlags: string[];
  readonly gatewayEnv: Record<string, string>;
  readonly baselineFor: Record<string, string>;
  readonly smoke: {
    persons: number;
    rate: number;
    warmupSeconds: number;
    measureSeconds: number;
    bulkSeconds: number;
    capacity: { startRate: number; maxSteps: number; warmupSeconds: number; measureSeconds: number };
  };
}

export function loadBudget(file = BUDGET_FILE): Budget {
  return JSON.parse(readFileSync(file, 'utf8')) as Budget;
}

/** The p99 budget of a unary method. */
export function p99BudgetMs(b: Budget, method: UnaryMethod): number {
  return b.budget[method].p99Ms;
}
