/**
 * The agency registry: which agencies exist, how each one's client certificate is recognised, what each may do,
 * and where providers serve. Parsing is strict: an unknown field or a bad value is a configuration error that
 * names the field, so a typo never silently widens access.
 */

export type AgencyRole = 'requester' | 'provider' | 'disclosure';

export interface AgencyEntry {
  readonly id: string;
  readonly name: string;
  readonly roles: ReadonlySet<AgencyRole>;
  /** Subject common name of the agency's client certificate. */
  readonly certificateCommonName: string;
  /** Optional pins: SHA-256 fingerprints (hex, upper case, colon separated as Node prints them). */
  readonly certificateFingerprints: readonly string[];
  /** Where the agency's InformationProvider server listens, for providers. */
  readonly providerAddress?: string;
}

export interface AgencyRegistry {
  readonly agencies: ReadonlyMap<string, AgencyEntry>;
  readonly byCommonName: ReadonlyMap<string, AgencyEntry>;
  /** The file's declared `version`, if any (shown in `linkgw_policy_info`; without one, a hash of the file is). */
  readonly version?: string;
}

const ID = /^[a-z][a-z0-9-]{0,31}$/;
/** A version becomes a metric label value: short, and characters that need no quoting anywhere. */
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$/;
const ROLES: ReadonlySet<string> = new Set(['requester', 'provider', 'disclosure']);

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function str(o: Record<string, unknown>, key: string, where: string, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${where}.${key}: a non-empty string is required`);
  return v;
}

function only(o: Record<string, unknown>, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ConfigError(`${where}: unknown field "${k}"`);
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${where}: an object is required`);
  return v as Record<string, unknown>;
}

export function parseAgencyRegistry(doc: unknown): AgencyRegistry {
  const root = obj(doc, 'registry');
  only(root, ['version', 'agencies', '$comment'], 'registry');
  if (root.version !== undefined && (typeof root.version !== 'string' || !VERSION.test(root.version)))
    throw new ConfigError('registry.version: 1 to 64 letters, digits and . _ : + - (starting with a letter or digit)');
  if (!Array.isArray(root.agencies) || root.agencies.length === 0) throw new ConfigError('registry.agencies: a non-empty list is required');
  const agencies = new Map<string, AgencyEntry>();
  const byCommonName = new Map<string, AgencyEntry>();
  root.agencies.forEach((raw, i) => {
    const where = `registry.agencies[${i}]`;
    const a = obj(raw, where);
    only(a, ['id', 'name', 'roles', 'certificate', 'provider'], where);
    const id = str(a, 'id', where)!;
    if (!ID.test(id)) throw new ConfigError(`${where}.id: lower-case letters, digits and hyphens, at most 32`);
    if (agencies.has(id)) throw new ConfigError(`${where}.id: "${id}" appears twice`);
    if (!Array.isArray(a.roles) || a.roles.some((r) => typeof r !== 'string' || !ROLES.has(r)))
      throw new ConfigError(`${where}.roles: a list of requester, provider, disclosure`);
    const roles = new Set(a.roles as AgencyRole[]);
    const cert = obj(a.certificate, `${where}.certificate`);
    only(cert, ['commonName', 'fingerprints'], `${where}.certificate`);
    const certificateCommonName = str(cert, 'commonName', `${where}.certificate`)!;
    const fps = cert.fingerprints ?? [];
    if (!Array.isArray(fps) || fps.some((f) => typeof f !== 'string' || !/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(f)))
      throw new ConfigError(`${where}.certificate.fingerprints: SHA-256 fingerprints as AA:BB:…`);
    let providerAddress: string | undefined;
    if (a.provider !== undefined) {
      const p = obj(a.provider, `${where}.provider`);
      only(p, ['address'], `${where}.provider`);
      providerAddress = str(p, 'address', `${where}.provider`);
    }
    if (roles.has('provider') && !providerAddress) throw new ConfigError(`${where}.provider.address: a provider needs one`);
    if (byCommonName.has(certificateCommonName))
      throw new ConfigError(`${where}.certificate.commonName: "${certificateCommonName}" belongs to two agencies`);
    const entry: AgencyEntry = {
      id,
      name: str(a, 'name', where)!,
      roles,
      certificateCommonName,
      certificateFingerprints: (fps as string[]).map((f) => f.toUpperCase()),
      ...(providerAddress ? { providerAddress } : {}),
    };
    agencies.set(id, entry);
    byCommonName.set(certificateCommonName, entry);
  });
  return { agencies, byCommonName, ...(root.version !== undefined ? { version: root.version as string } : {}) };
}

/** A copy of the registry with provider addresses replaced (tests and the embedded simulated agencies). */
export function withProviderAddresses(reg: AgencyRegistry, addresses: ReadonlyMap<string, string>): AgencyRegistry {
  const agencies = new Map<string, AgencyEntry>();
  const byCommonName = new Map<string, AgencyEntry>();
  for (const [id, e] of reg.agencies) {
    const address = addresses.get(id);
    const entry = address ? { ...e, providerAddress: address } : e;
    agencies.set(id, entry);
    byCommonName.set(entry.certificateCommonName, entry);
  }
  return { agencies, byCommonName, ...(reg.version !== undefined ? { version: reg.version } : {}) };
}
