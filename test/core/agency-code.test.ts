import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgencyCodec, CODE_LENGTH } from '../../src/core/agency-code.js';
import { base32Decode, base32Encode } from '../../src/core/base32.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { SubjectKeys } from '../../src/core/subject-key.js';
import { population } from '../helpers/population.js';

const keys = (v = 1, masters = new Map([[1, randomBytes(32)]])) => ({ current: v, masters });
const value = (s: string) => {
  const c = checkPersonalNumber(s);
  if (!c.ok) throw new Error('bad test number');
  return c.value;
};

describe('agency codes', () => {
  const codec = new AgencyCodec(keys());
  const numbers = population(500);

  it('are deterministic per person and agency', () => {
    for (const n of numbers.slice(0, 50)) expect(codec.encode('pension', value(n))).toBe(codec.encode('pension', value(n)));
  });

  it('differ between agencies and between persons', () => {
    const seen = new Set<string>();
    for (const n of numbers) for (const a of ['pension', 'tax', 'welfare']) seen.add(codec.encode(a, value(n)));
    expect(seen.size).toBe(numbers.length * 3);
  });

  it('never contain the number or a long run of its digits', () => {
    for (const n of numbers) {
      const code = codec.encode('tax', value(n));
      expect(code).toHaveLength(CODE_LENGTH);
      expect(code).not.toContain(n);
      expect(code).not.toContain(n.slice(0, 6));
      expect(code).not.toContain(n.slice(6));
    }
  });

  it('decode to the same person inside the gateway', () => {
    const codes = codec.encodeMany('welfare', numbers.map(value));
    const back = codec.decodeMany('welfare', codes);
    back.forEach((d, i) => expect(d).toEqual({ ok: true, number: value(numbers[i]!), version: 1 }));
  });

  it('reject every single-character alteration, never decoding to another person', () => {
    const code = codec.encode('pension', value(numbers[0]!));
    const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    let tried = 0;
    for (let i = 0; i < code.length; i++) {
      for (const c of alphabet) {
        if (c === code[i]) continue;
        const forged = code.slice(0, i) + c + code.slice(i + 1);
        const d = codec.decode('pension', forged);
        expect(d.ok).toBe(false);
        tried++;
      }
    }
    expect(tried).toBe(CODE_LENGTH * 31);
  });

  it('reject random forgeries and garbage', () => {
    for (let i = 0; i < 2000; i++) {
      const forged = base32Encode(Buffer.concat([Buffer.from([1]), randomBytes(16)]));
      expect(codec.decode('pension', forged).ok).toBe(false);
    }
    for (const g of ['', 'x', 'not a code', '0'.repeat(27), '0'.repeat(29), '!'.repeat(28), '\u0000'.repeat(28)])
      expect(codec.decode('pension', g)).toMatchObject({ ok: false, problem: 'format' });
  });

  it("reject another agency's code", () => {
    for (const n of numbers.slice(0, 200)) {
      const taxCode = codec.encode('tax', value(n));
      expect(codec.decode('pension', taxCode)).toEqual({ ok: false, problem: 'not-authentic' });
    }
  });

  it('are unlinkable across keyrings: another gateway key gives unrelated codes and rejects ours', () => {
    const other = new AgencyCodec(keys());
    const n = value(numbers[1]!);
    expect(other.encode('tax', n)).not.toBe(codec.encode('tax', n));
    expect(other.decode('tax', codec.encode('tax', n)).ok).toBe(false);
  });

  it('keep decoding after a key rotation, while new codes use the new version', () => {
    const m1 = randomBytes(32);
    const before = new AgencyCodec({ current: 1, masters: new Map([[1, m1]]) });
    const after = new AgencyCodec({ current: 2, masters: new Map([[1, m1], [2, randomBytes(32)]]) });
    const n = value(numbers[2]!);
    const old = before.encode('tax', n);
    const fresh = after.encode('tax', n);
    expect(fresh).not.toBe(old);
    expect(after.decode('tax', old)).toEqual({ ok: true, number: n, version: 1 });
    expect(after.decode('tax', fresh)).toEqual({ ok: true, number: n, version: 2 });
    // A code naming a version whose key is gone is refused as such.
    expect(before.decode('tax', fresh)).toEqual({ ok: false, problem: 'unknown-key-version' });
  });

  it('accept lower case, as base32 is case-insensitive', () => {
    const code = codec.encode('tax', value(numbers[3]!));
    expect(codec.decode('tax', code.toLowerCase())).toMatchObject({ ok: true });
  });
});

describe('base32', () => {
  it('round-trips and refuses non-canonical trailing bits', () => {
    for (let n = 1; n < 40; n++) {
      const b = randomBytes(n);
      expect(Buffer.from(base32Decode(base32Encode(b), n)!)).toEqual(b);
    }
    const s = base32Encode(Buffer.from([0xff]));
    expect(s).toBe('ZW');
    expect(base32Decode('ZZ', 1)).toBeNull();
  });
});

describe('subject keys', () => {
  it('are stable, distinct per person, and contain neither the number nor its digits', () => {
    const s = new SubjectKeys(randomBytes(32));
    const ns = population(100);
    const keys = ns.map((n) => s.of(value(n)));
    expect(new Set(keys).size).toBe(100);
    ns.forEach((n, i) => {
      expect(s.of(value(n))).toBe(keys[i]);
      expect(keys[i]).not.toContain(n);
    });
  });
});
