/**
 * Synthetic, deterministic answers of the simulated providing agencies, keyed by the provider's own code for
 * the person (the only identifier a provider ever receives). About one person in sixteen is unknown to each
 * provider, so "not found" exchanges happen naturally. Amounts are plausible, not real.
 */
import { createHash } from 'node:crypto';

export interface SyntheticAnswer {
  readonly payload: Uint8Array;
  readonly contentType: string;
}

function digest(...parts: string[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest();
}

/** Whether the simulated `agency` knows the person with this code. */
export function isEnrolled(agency: string, code: string): boolean {
  return digest('enrolled', agency, code.toUpperCase())[0]! >= 16;
}

type Maker = (h: Buffer) => Record<string, unknown>;

const ITEMS: Record<string, Record<string, Maker>> = {
  tax: {
    income: (h) => ({ fiscalYear: 2025, taxableIncomeJpy: 1_800_000 + (h.readUInt32BE(0) % 90) * 100_000, residentTaxJpy: 60_000 + (h.readUInt32BE(4) % 40) * 10_000 }),
  },
  employment: {
    'unemployment-benefit': (h) =>
      h[0]! % 5 === 0
        ? { receiving: true, dailyAmountJpy: 4_000 + (h.readUInt16BE(1) % 40) * 100, remainingDays: 10 + (h[3]! % 140) }
        : { receiving: false },
  },
  pension: {
    'pension-benefit': (h) =>
      h[0]! % 3 === 0 ? { receiving: true, kind: 'old-age basic pension', annualAmountJpy: 600_000 + (h.readUInt16BE(1) % 220) * 1_000 } : { receiving: false },
  },
  welfare: {
    'public-assistance': (h) => (h[0]! % 20 === 0 ? { receiving: true, since: `20${10 + (h[1]! % 15)}-04-01` } : { receiving: false }),
  },
};

export function simulatedItems(agency: string): string[] {
  return Object.keys(ITEMS[agency] ?? {});
}

/** The answer, or null when the person is unknown; throws RangeError for an item the agency does not serve. */
export function syntheticAnswer(agency: string, code: string, item: string): SyntheticAnswer | null {
  const make = ITEMS[agency]?.[item];
  if (!make) throw new RangeError('item not served');
  if (!isEnrolled(agency, code)) return null;
  const body = { agency, item, ...make(digest('data', agency, item, code.toUpperCase())) };
  return { payload: Buffer.from(JSON.stringify(body)), contentType: 'application/json' };
}
