/**
 * Corporate number (法人番号) validation: 13 digits, the leftmost a check digit.
 * check = 9 − (Σ P_n·Q_n mod 9), P_n the n-th digit from the right of the 12-digit base, Q_n = 1 for odd n,
 * 2 for even n. Corporate numbers are public and need no pseudonym; the gateway recognises them only to tell a
 * caller who sent one where a personal number belongs.
 */

export type CorporateProblem = 'length' | 'non-digit' | 'check-digit';

export function corporateNumberCheckDigit(base12: string): number {
  let sum = 0;
  for (let n = 1; n <= 12; n++) {
    const p = base12.charCodeAt(12 - n) - 48;
    sum += p * (n % 2 === 1 ? 1 : 2);
  }
  return 9 - (sum % 9);
}

export function checkCorporateNumber(s: string): { ok: true } | { ok: false; problem: CorporateProblem } {
  if (s.length !== 13) return { ok: false, problem: 'length' };
  for (let i = 0; i < 13; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return { ok: false, problem: 'non-digit' };
  }
  if (corporateNumberCheckDigit(s.slice(1)) !== s.charCodeAt(0) - 48) return { ok: false, problem: 'check-digit' };
  return { ok: true };
}

/** True when `s` is a valid corporate number: used to give a clearer error than a bare length mismatch. */
export function isCorporateNumber(s: string): boolean {
  return checkCorporateNumber(s).ok;
}
