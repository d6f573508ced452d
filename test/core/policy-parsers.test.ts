/**
 * The legal-basis table and the agency registry are parsed strictly (a typo never widens access), and
 * `decide` allows exactly the tuples of the table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseAgencyRegistry, withProviderAddresses } from '../../src/core/agency-registry.js';
import { decide, namesNonDisclosable, parseLegalBasisTable } from '../../src/core/legal-basis.js';

const row = (o: Record<string, unknown> = {}) => ({ id: 'R1', requester: 'a', procedure: 'p.one', provider: 'b', items: ['x'], basis: 'law', ...o });
const table = (rows: unknown[], extra: Record<string, unknown> = {}) => ({ version: 'v1', rows, ...extra });
const agency = (o: Record<string, unknown> = {}) => ({ id: 'pension', name: 'P', roles: ['requester'], certificate: { commonName: 'pension' }, ...o });

describe('parseLegalBasisTable', () => {
  it('reads the shipped table, with its ordinance and non-disclosable rows', () => {
    const t = parseLegalBasisTable(JSON.parse(readFileSync('config/legal-basis.json', 'utf8')));
    expect(t.rows.length).toBeGreaterThanOrEqual(7);
    expect(t.rows.find((r) => r.id === 'ORD-001')?.ordinance).toBe(true);
    expect(t.rows.find((r) => r.id === 'B2-006')?.nonDisclosable).toBe(true);
    expect(t.procedures.has('welfare.public-assistance')).toBe(true);
    expect(t.items.has('income')).toBe(true);
  });

  it.each([
    ['an unknown top-level field', table([row()], { rowz: [] }), /unknown field "rowz"/],
    ['an unknown row field', table([row({ itemz: ['x'] })]), /unknown field "itemz"/],
    ['a missing version', { rows: [row()] }, /version/],
    ['a row id twice', table([row(), row({ procedure: 'p.two' })]), /appears twice/],
    ['the same tuple twice', table([row(), row({ id: 'R2' })]), /same requester, procedure and provider/],
    ['an empty item list', table([row({ items: [] })]), /items/],
    ['an item name with capitals', table([row({ items: ['Income'] })]), /items/],
    ['a procedure with spaces', table([row({ procedure: 'p one' })]), /procedure/],
    ['a non-boolean flag', table([row({ nonDisclosable: 'yes' })]), /nonDisclosable/],
  ])('refuses %s', (_what, doc, message) => {
    expect(() => parseLegalBasisTable(doc)).toThrow(ConfigError);
    expect(() => parseLegalBasisTable(doc)).toThrow(message);
  });

  it('refuses a row naming an agency the registry does not have', () => {
    expect(() => parseLegalBasisTable(table([row()]), new Set(['a']))).toThrow(/"b" is not in the agency registry/);
  });
});

describe('decide', () => {
  const t = parseLegalBasisTable(table([row({ items: ['x', 'y'] }), row({ id: 'R2', requester: 'c', nonDisclosable: true })]));

  it('allows a tuple of the table and names its row', () => {
    expect(decide(t, { requester: 'a', procedure: 'p.one', provider: 'b', item: 'y' })).toMatchObject({ allowed: true, row: { id: 'R1' } });
  });

  it('denies an item the row does not list, naming the row', () => {
    expect(decide(t, { requester: 'a', procedure: 'p.one', provider: 'b', item: 'z' })).toMatchObject({ allowed: false, reason: 'item-not-in-row', row: { id: 'R1' } });
  });

  it.each([
    ['another requester', { requester: 'b', procedure: 'p.one', provider: 'b', item: 'x' }],
    ['another procedure', { requester: 'a', procedure: 'p.two', provider: 'b', item: 'x' }],
    ['another provider', { requester: 'a', procedure: 'p.one', provider: 'a', item: 'x' }],
  ])('denies %s with no row', (_what, q) => {
    expect(decide(t, q)).toEqual({ allowed: false, reason: 'no-row' });
  });
});

describe('parseAgencyRegistry', () => {
  it('reads the shipped registry: providers have addresses, the disclosure system has its role', () => {
    const r = parseAgencyRegistry(JSON.parse(readFileSync('config/agencies.json', 'utf8')));
    expect(r.agencies.get('tax')?.providerAddress).toMatch(/:\d+$/);
    expect(r.agencies.get('disclosure')?.roles.has('disclosure')).toBe(true);
    expect(r.byCommonName.get('pension')?.id).toBe('pension');
  });

  it.each([
    ['an unknown field', { agencies: [agency({ role: ['requester'] })] }, /unknown field "role"/],
    ['an unknown role', { agencies: [agency({ roles: ['admin'] })] }, /roles/],
    ['an id twice', { agencies: [agency(), agency({ certificate: { commonName: 'other' } })] }, /appears twice/],
    ['a common name of two agencies', { agencies: [agency(), agency({ id: 'tax' })] }, /belongs to two agencies/],
    ['a provider without an address', { agencies: [agency({ roles: ['provider'] })] }, /provider.address/],
    ['a malformed pin', { agencies: [agency({ certificate: { commonName: 'pension', fingerprints: ['AB:CD'] } })] }, /fingerprints/],
    ['no agencies', { agencies: [] }, /non-empty/],
    ['a version that is not a string', { version: 3, agencies: [agency()] }, /registry.version/],
    ['an empty version', { version: '', agencies: [agency()] }, /registry.version/],
    ['a version with spaces or quotes', { version: 'v1 "x"', agencies: [agency()] }, /registry.version/],
    ['a version over 64 characters', { version: 'v'.repeat(65), agencies: [agency()] }, /registry.version/],
  ])('refuses %s', (_what, doc, message) => {
    expect(() => parseAgencyRegistry(doc)).toThrow(ConfigError);
    expect(() => parseAgencyRegistry(doc)).toThrow(message);
  });

  it('reads an optional version, kept when provider addresses are replaced', () => {
    expect(parseAgencyRegistry({ agencies: [agency()] }).version).toBeUndefined();
    const r = parseAgencyRegistry({ version: '2026-11.r2', agencies: [agency()] });
    expect(r.version).toBe('2026-11.r2');
    expect(withProviderAddresses(r, new Map()).version).toBe('2026-11.r2');
  });

  it('keeps pins upper case, and replaces provider addresses without touching the rest', () => {
    const pin = Array.from({ length: 32 }, () => 'ab').join(':');
    const r = parseAgencyRegistry({ agencies: [agency({ roles: ['provider'], provider: { address: 'h:1' }, certificate: { commonName: 'pension', fingerprints: [pin] } })] });
    expect(r.agencies.get('pension')?.certificateFingerprints).toEqual([pin.toUpperCase()]);
    const moved = withProviderAddresses(r, new Map([['pension', '127.0.0.1:9']]));
    expect(moved.agencies.get('pension')?.providerAddress).toBe('127.0.0.1:9');
    expect(moved.byCommonName.get('pension')?.providerAddress).toBe('127.0.0.1:9');
    expect(r.agencies.get('pension')?.providerAddress).toBe('h:1');
  });
});

describe('namesNonDisclosable', () => {
  const t = parseLegalBasisTable(
    table([row({ items: ['income'] }), row({ id: 'R2', procedure: 'p.dv', items: ['income', 'shelter'], nonDisclosable: true })]),
  );
  it('marks every procedure of a non-disclosable row, and items that only such rows list', () => {
    expect(namesNonDisclosable(t, 'p.dv', 'income')).toBe(true);
    expect(namesNonDisclosable(t, 'p.one', 'shelter')).toBe(true);
    expect(namesNonDisclosable(t, 'p.one', 'income')).toBe(false);
    expect(namesNonDisclosable(t, 'unlisted', 'unknown')).toBe(false);
  });
});
