/** Turns a personal number from a request into an integer, or the INVALID_ARGUMENT a caller should see. */
import { isCorporateNumber } from '../core/corporate-number.js';
import { GatewayError } from '../core/errors.js';
import { checkPersonalNumber, describeNumberProblem } from '../core/personal-number.js';

export function personalNumberProblem(s: string): string | null {
  const c = checkPersonalNumber(s);
  if (c.ok) return null;
  if (isCorporateNumber(s)) return 'a corporate number (13 digits) was sent where a personal number belongs; corporate numbers need no code';
  return describeNumberProblem(c.problem);
}

export function parsePersonalNumber(s: string): number {
  const c = checkPersonalNumber(s);
  if (c.ok) return c.value;
  throw new GatewayError('INVALID_ARGUMENT', personalNumberProblem(s)!);
}
