/**
 * Ids the gateway makes for calls: request ids, and trace and span ids when the caller sent none. Every log
 * string is scrubbed of 12–13 digit runs (personal and corporate numbers, src/log/logger.ts); a random 32-hex
 * trace id has such a run about 1.5% of the time, and would reach the logs as `[digits]`, no longer matching
 * its trace. So an id is drawn again until the scrub leaves it alone (a rare second draw, ~50 ns each).
 */
import { randomUUID } from 'node:crypto';
import { scrub } from '../log/logger.js';

/** Draws until the log scrub would keep the id as it is. */
function clean(draw: () => string): string {
  for (;;) {
    const id = draw();
    if (scrub(id) === id) return id;
  }
}

/** A request id for a call that came without a usable `x-request-id` (a UUID: Node keeps entropy for them). */
export function newRequestId(): string {
  return clean(randomUUID);
}

/** 32 lower-case hex digits, not all zero (the 122 random bits of a UUID, and its fixed version digits). */
export function newTraceId(): string {
  return clean(() => randomUUID().replace(/-/g, ''));
}

/** 16 lower-case hex digits (the span id of a span the gateway does not record, for a provider's parent). */
export function newSpanId(): string {
  return clean(() => randomUUID().replace(/-/g, '').slice(16));
}

/** True when the log scrub keeps `id` as it is (a caller's trace id may not survive it: see above). */
export function survivesScrub(id: string): boolean {
  return scrub(id) === id;
}
