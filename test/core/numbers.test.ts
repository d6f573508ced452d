import { describe, expect, it } from 'vitest';
import { checkCorporateNumber, corporateNumberCheckDigit } from '../../src/core/corporate-number.js';
import { checkPersonalNumber, formatPersonalNumber, personalNumberCheckDigit, withCheckDigit } from '../../src/core/personal-number.js';
import { population, withBadCheckDigit } from '../helpers/population.js';

describe('personal number', () => {
  it('accepts the public examples', () => {
    for (const n of ['621498320257', '123456789018']) expect(checkPersonalNumber(n)).toEqual({ ok: true, value: Number(n) });
  });

  it('rejects the specimen on the notice card, whose check digit is wrong', () => {
    expect(checkPersonalNumber('123456789012')).toEqual({ ok: false, problem: 'check-digit' });
  });

  it('computes the check digit by the ordinance (weights 6,5,4,3,2,7,6,5,4,3,2; remainder 0 or 1 gives 0)', () => {
    expect(personalNumberCheckDigit('12345678901')).toBe(8);
    expect(personalNumberCheckDigit('62149832025')).toBe(7);
    // Σ = 0 → remainder 0 → 0; a remainder of 1 also gives 0.
    expect(personalNumberCheckDigit('00000000000')).toBe(0);
    expect(personalNumberCheckDigit('00000000006')).toBe(0); // 6·2 = 12, 12 mod 11 = 1
    expect(personalNumberCheckDigit('00000000001')).toBe(9); // 2 mod 11 = 2 → 9
  });

  it('names the problem: length, non-digit, check digit', () => {
    expect(checkPersonalNumber('')).toEqual({ ok: false, problem: 'length' });
    expect(checkPersonalNumber('12345678901')).toEqual({ ok: false, problem: 'length' });
    expect(checkPersonalNumber('1234567890180')).toEqual({ ok: false, problem: 'length' });
    expect(checkPersonalNumber('12345678901a')).toEqual({ ok: false, problem: 'non-digit' });
    expect(checkPersonalNumber('1234 5678 90')).toEqual({ ok: false, problem: 'non-digit' });
    expect(checkPersonalNumber('１２３４５６７８９０１８')).toEqual({ ok: false, problem: 'non-digit' });
    expect(checkPersonalNumber('123456789017')).toEqual({ ok: false, problem: 'check-digit' });
  });

  it('finds every single-digit error in a population', () => {
    for (const n of population(200)) {
      expect(checkPersonalNumber(n).ok).toBe(true);
      expect(checkPersonalNumber(withBadCheckDigit(n)).ok).toBe(false);
    }
  });

  it('round-trips through its integer form, keeping leading zeros', () => {
    const n = withCheckDigit('00000012345');
    const c = checkPersonalNumber(n);
    expect(c.ok && formatPersonalNumber(c.value)).toBe(n);
  });
});

describe('corporate number', () => {
  it('accepts the National Tax Agency example and computes its leading check digit', () => {
    expect(checkCorporateNumber('7000012050002')).toEqual({ ok: true });
    expect(corporateNumberCheckDigit('000012050002')).toBe(7);
  });

  it('rejects a wrong check digit, wrong length and non-digits', () => {
    expect(checkCorporateNumber('8000012050002')).toEqual({ ok: false, problem: 'check-digit' });
    expect(checkCorporateNumber('700001205000')).toEqual({ ok: false, problem: 'length' });
    expect(checkCorporateNumber('70000120500x2')).toEqual({ ok: false, problem: 'non-digit' });
  });
});

describe('000000000000', () => {
  it('has a valid check digit but is refused as no one\'s number', () => {
    expect(checkPersonalNumber('000000000000')).toEqual({ ok: false, problem: 'not-issued' });
  });
});
