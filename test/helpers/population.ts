/** Synthetic personal numbers with valid check digits, deterministic from a seed. */
import { withCheckDigit } from '../../src/core/personal-number.js';

export function syntheticNumber(i: number, seed = 0): string {
  // A multiplicative walk over the 11-digit space, so consecutive i give unrelated-looking numbers.
  const base = (BigInt(i) * 7_919_000_003n + BigInt(seed) * 1_000_003n + 12_345_678_901n) % 100_000_000_000n;
  return withCheckDigit(base.toString().padStart(11, '0'));
}

export function population(n: number, seed = 0): string[] {
  return Array.from({ length: n }, (_, i) => syntheticNumber(i, seed));
}

/** A number whose check digit is wrong. */
export function withBadCheckDigit(valid: string): string {
  const d = (Number(valid[11]) + 1) % 10;
  return valid.slice(0, 11) + String(d);
}
