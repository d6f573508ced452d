/**
 * Personal number (個人番号) validation: 12 digits, the 12th a check digit (総務省令 §5).
 *
 * check = 11 − (Σ P_n·Q_n mod 11), or 0 when the remainder is 0 or 1, where P_n is the n-th digit from the
 * right of the first 11 digits and Q_n = n+1 for n ≤ 6, n−5 for n ≥ 7; left to right: 6,5,4,3,2,7,6,5,4,3,2.
 *
 * Nothing here ever puts the number into an error message: reasons are fixed strings.
 */

export type NumberProblem = 'length' | 'non-digit' | 'check-digit' | 'not-issued';

export type NumberCheck = { ok: true; value: number } | { ok: false; problem: NumberProblem };

const WEIGHTS = [6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2] as const;

/** The check digit for the first 11 digits of a personal number, given as char codes in `s`. */
export function personalNumberCheckDigit(first11: string): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum += (first11.charCodeAt(i) - 48) * WEIGHTS[i]!;
  const r = sum % 11;
  return r <= 1 ? 0 : 11 - r;
}

/**
 * Validates a personal number and returns it as an integer (it is below 2^40, so it is exact in a double and
 * packs into 5 bytes). The string must be exactly 12 ASCII digits: no spaces, hyphens or full-width digits.
 */
export function checkPersonalNumber(s: string): NumberCheck {
  if (s.length !== 12) return { ok: false, problem: 'length' };
  let value = 0;
  for (let i = 0; i < 12; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return { ok: false, problem: 'non-digit' };
    value = value * 10 + d;
  }
  if (personalNumberCheckDigit(s) !== s.charCodeAt(11) - 48) return { ok: false, problem: 'check-digit' };
  // All zeros has a valid check digit (0) but is no one's number: numbers are issued from non-zero bases, and a
  // zero-filled field is what a form or a file export leaves where a number is missing. Taking it would give
  // every such blank row one shared code, binding unrelated records to one "person".
  if (value === 0) return { ok: false, problem: 'not-issued' };
  return { ok: true, value };
}

/** The 12-digit string of a personal number held as an integer. */
export function formatPersonalNumber(value: number): string {
  return value.toString().padStart(12, '0');
}

/** Completes 11 digits with their check digit: for synthetic populations in tests and benchmarks. */
export function withCheckDigit(first11: string): string {
  if (!/^[0-9]{11}$/.test(first11)) throw new RangeError('need exactly 11 digits');
  return first11 + String(personalNumberCheckDigit(first11));
}

/** Human text for a problem; names the rule, never the number. */
export function describeNumberProblem(problem: NumberProblem): string {
  switch (problem) {
    case 'length':
      return 'a personal number has exactly 12 digits';
    case 'non-digit':
      return 'a personal number has only the ASCII digits 0-9';
    case 'check-digit':
      return 'the check digit of the personal number does not match';
    case 'not-issued':
      return 'all zeros is not a number issued to anyone (a blank field?)';
  }
}
