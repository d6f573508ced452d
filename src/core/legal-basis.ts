/**
 * The legal-basis table, in the spirit of 番号法 別表第二: each row lets one requester, for one procedure (事務),
 * ask one provider for some information items. Municipalities add rows by ordinance (条例); a row may say
 * that its records are non-disclosable (不開示). A query matches a row or it is denied.
 */
import { ConfigError, type AgencyRegistry } from './agency-registry.js';

export interface LegalBasisRow {
  readonly id: string;
  readonly requester: string;
  readonly procedure: string;
  readonly provider: string;
  readonly items: ReadonlySet<string>;
  /** The legal text the row rests on, for people reading records and audits. */
  readonly basis: string;
  readonly ordinance: boolean;
  readonly nonDisclosable: boolean;
}

export interface LegalBasisTable {
  readonly version: string;
  readonly rows: readonly LegalBasisRow[];
  /** requester \0 procedure \0 provider → row */
  readonly index: ReadonlyMap<string, LegalBasisRow>;
  /** Every procedure and item the table names: anything else a caller sends is not recorded verbatim. */
  readonly procedures: ReadonlySet<string>;
  readonly items: ReadonlySet<string>;
  /**
   * Names whose mere appearance in a record would reveal a non-disclosable (不開示) exchange: every procedure of a
   * non-disclosable row, and every item that only non-disclosable rows list.
   */
  readonly nonDisclosableNames: ReadonlySet<string>;
}

export interface QueryTuple {
  readonly requester: string;
  readonly procedure: string;
  readonly provider: string;
  readonly item: string;
}

export type Decision =
  | { allowed: true; row: LegalBasisRow }
  | { allowed: false; reason: 'no-row' | 'item-not-in-row'; row?: LegalBasisRow };

const key = (requester: string, procedure: string, provider: string) => `${requester}\0${procedure}\0${provider}`;

/**
 * Whether a record naming this procedure and item must be non-disclosable, whatever the outcome and whichever
 * row matched (if any). A query for a DV-shelter procedure that matches no row (wrong provider, another
 * requester, another item) still names the procedure; shown to the person, it would tell whoever reads their
 * account what the 不開示 row exists to hide.
 */
export function namesNonDisclosable(table: LegalBasisTable, procedure: string, item: string): boolean {
  return table.nonDisclosableNames.has(`p:${procedure}`) || table.nonDisclosableNames.has(`i:${item}`);
}

export function decide(table: LegalBasisTable, q: QueryTuple): Decision {
  const row = table.index.get(key(q.requester, q.procedure, q.provider));
  if (!row) return { allowed: false, reason: 'no-row' };
  if (!row.items.has(q.item)) return { allowed: false, reason: 'item-not-in-row', row };
  return { allowed: true, row };
}

/**
 * Self-information display (自己情報表示): the disclosure agency asks providers, for the signed-in person, for
 * what they hold about that person. Its requests are allowed only under rows of this procedure.
 */
export const SELF_INFORMATION_PROCEDURE = 'disclosure.self-information';

/** Whether an agency may query under this procedure at all: requesters anywhere, the disclosure agency only for self-information. */
export function mayQuery(roles: ReadonlySet<string>, procedure: string): boolean {
  if (roles.has('disclosure')) return procedure === SELF_INFORMATION_PROCEDURE;
  return roles.has('requester');
}

/**
 * The bounds of self-information rows, checked with the registry (a policy that breaks one is refused):
 * a self-information row names an agency with the disclosure role as requester, is itself disclosable (the
 * person sees the query in their records), and names no item that only non-disclosable rows list (such an
 * item's answer, or even its name, would reveal what a 不開示 row hides); and an agency with the disclosure
 * role is the requester of no other row.
 */
export function selfInformationProblems(table: LegalBasisTable, registry: AgencyRegistry): string[] {
  const problems: string[] = [];
  const others = table.rows.filter((r) => r.procedure !== SELF_INFORMATION_PROCEDURE);
  const disclosable = new Set(others.filter((r) => !r.nonDisclosable).flatMap((r) => [...r.items]));
  const protectedItems = new Set(others.filter((r) => r.nonDisclosable).flatMap((r) => [...r.items]).filter((i) => !disclosable.has(i)));
  for (const r of table.rows) {
    const isDiscloser = registry.agencies.get(r.requester)?.roles.has('disclosure') ?? false;
    if (r.procedure === SELF_INFORMATION_PROCEDURE) {
      if (!isDiscloser) problems.push(`row ${r.id}: a ${SELF_INFORMATION_PROCEDURE} row names an agency with the disclosure role as requester`);
      if (r.nonDisclosable) problems.push(`row ${r.id}: a ${SELF_INFORMATION_PROCEDURE} row cannot be non-disclosable`);
      for (const i of r.items) if (protectedItems.has(i)) problems.push(`row ${r.id}: item "${i}" is listed only by non-disclosable rows`);
    } else if (isDiscloser) problems.push(`row ${r.id}: the disclosure agency may be the requester of ${SELF_INFORMATION_PROCEDURE} rows only`);
  }
  return problems;
}

const NAME = /^[a-z][a-z0-9.-]{0,63}$/;

export function parseLegalBasisTable(doc: unknown, agencies?: ReadonlySet<string>): LegalBasisTable {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('legal basis: an object is required');
  const root = doc as Record<string, unknown>;
  for (const k of Object.keys(root))
    if (!['version', 'rows', '$comment'].includes(k)) throw new ConfigError(`legal basis: unknown field "${k}"`);
  if (typeof root.version !== 'string' || !root.version) throw new ConfigError('legal basis.version: a string is required');
  if (!Array.isArray(root.rows)) throw new ConfigError('legal basis.rows: a list is required');
  const rows: LegalBasisRow[] = [];
  const index = new Map<string, LegalBasisRow>();
  const ids = new Set<string>();
  root.rows.forEach((raw, i) => {
    const where = `legal basis.rows[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new ConfigError(`${where}: an object is required`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r))
      if (!['id', 'requester', 'procedure', 'provider', 'items', 'basis', 'ordinance', 'nonDisclosable'].includes(k))
        throw new ConfigError(`${where}: unknown field "${k}"`);
    for (const f of ['id', 'requester', 'procedure', 'provider', 'basis'])
      if (typeof r[f] !== 'string' || !(r[f] as string).length) throw new ConfigError(`${where}.${f}: a string is required`);
    const id = r.id as string;
    if (ids.has(id)) throw new ConfigError(`${where}.id: "${id}" appears twice`);
    ids.add(id);
    for (const f of ['procedure'])
      if (!NAME.test(r[f] as string)) throw new ConfigError(`${where}.${f}: lower case, digits, dots and hyphens`);
    if (agencies) {
      for (const f of ['requester', 'provider'])
        if (!agencies.has(r[f] as string)) throw new ConfigError(`${where}.${f}: "${r[f] as string}" is not in the agency registry`);
    }
    if (!Array.isArray(r.items) || r.items.length === 0 || r.items.some((x) => typeof x !== 'string' || !NAME.test(x)))
      throw new ConfigError(`${where}.items: a non-empty list of item names`);
    for (const f of ['ordinance', 'nonDisclosable'])
      if (r[f] !== undefined && typeof r[f] !== 'boolean') throw new ConfigError(`${where}.${f}: true or false`);
    const row: LegalBasisRow = {
      id,
      requester: r.requester as string,
      procedure: r.procedure as string,
      provider: r.provider as string,
      items: new Set(r.items as string[]),
      basis: r.basis as string,
      ordinance: r.ordinance === true,
      nonDisclosable: r.nonDisclosable === true,
    };
    const k = key(row.requester, row.procedure, row.provider);
    if (index.has(k)) throw new ConfigError(`${where}: the same requester, procedure and provider as row "${index.get(k)!.id}"`);
    index.set(k, row);
    rows.push(row);
  });
  const procedures = new Set(rows.map((r) => r.procedure));
  const items = new Set(rows.flatMap((r) => [...r.items]));
  const disclosableItems = new Set(rows.filter((r) => !r.nonDisclosable).flatMap((r) => [...r.items]));
  const nonDisclosableNames = new Set([
    ...rows.filter((r) => r.nonDisclosable).map((r) => `p:${r.procedure}`),
    ...[...items].filter((i) => !disclosableItems.has(i)).map((i) => `i:${i}`),
  ]);
  return { version: root.version, rows, index, procedures, items, nonDisclosableNames };
}
