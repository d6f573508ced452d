/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate` values a caller
 * sends, parsed strictly, and the `traceparent` the gateway sends on. Anything that does not follow the grammar
 * is dropped whole (the spec's "restart the trace"), never repaired: a value the gateway cannot vouch for is not
 * passed to a provider.
 *
 * Only version 00 is produced. A higher version is accepted as the spec asks (its first four fields read as
 * version 00's, anything after a further `-` ignored) and sent on as version 00; version ff is invalid.
 */

/** The caller's position in its trace: the trace, its span (our parent) and its flags (bit 0: sampled). */
export interface TraceParent {
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The caller's traceparent, or undefined when it is absent, repeated or malformed. */
export function parseTraceparent(values: readonly unknown[]): TraceParent | undefined {
  if (values.length !== 1) return undefined;
  const v = values[0];
  if (typeof v !== 'string' || v.length > 256) return undefined;
  const m = TRACEPARENT.exec(v);
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff') return undefined;
  // Version 00 has exactly four fields; a later version may add fields after a dash.
  if (version === '00' && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, parentId: parentId!, flags: parseInt(flags!, 16) };
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;
}

// A list member: key "=" value. Keys are `simple` or `tenant@system`; values are printable ASCII without , and =,
// not ending in a space (https://www.w3.org/TR/trace-context/#tracestate-header-field-values).
const KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_MEMBERS = 32;
/** The spec lets an intermediary drop a tracestate over 512 characters; so does the gateway, whole. */
const MAX_LENGTH = 512;

/**
 * The caller's tracestate as one normalised header value (members joined by `,`, empty members dropped), or
 * undefined when there is none or any part of it is malformed: a key twice, more than 32 members, too long.
 * Several metadata values are one list, in order, as with HTTP headers.
 */
export function parseTracestate(values: readonly unknown[]): string | undefined {
  if (values.length === 0) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const v of values) {
    if (typeof v !== 'string') return undefined;
    for (const raw of v.split(',')) {
      const member = raw.trim();
      if (member === '') continue;
      const eq = member.indexOf('=');
      if (eq <= 0) return undefined;
      const key = member.slice(0, eq);
      if (!KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return undefined;
      keys.add(key);
      members.push(member);
    }
  }
  if (members.length === 0 || members.length > MAX_MEMBERS) return undefined;
  const s = members.join(',');
  return s.length > MAX_LENGTH ? undefined : s;
}
