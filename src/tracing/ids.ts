/**
 * Ids the gateway makes for calls: request ids, and trace and span ids when the caller sent none. Every log
 * string is scrubbed of 12–13 digit runs (personal and corporate numbers, src/log/logger.ts); a random 32-hex
 * trace id has such a run about 1.5% of the time, and would reach the logs as `[digits]`, no longer matching
 * its trace. So an id with a run of 12 digits or more is drawn again (the code-shaped scrub cannot match these
 * shapes: no 28-character token). A draw is one UUID, for which Node keeps entropy ready (~120 ns); slicing it
 * costs less than a regular-expression replace (~500 ns, measured).
 */
import { randomUUID } from 'node:crypto';

const DIGIT_RUN = /[0-9]{12}/;

function uuid(): string {
  for (;;) {
    const u = randomUUID();
    if (!DIGIT_RUN.test(u)) return u;
  }
}

/** A request id for a call that came without a usable `x-request-id`. */
export function newRequestId(): string {
  return uuid();
}

/** 32 lower-case hex digits, not all zero: a UUID's 122 random bits and its fixed version digits. */
export function newTraceId(): string {
  for (;;) {
    const u = randomUUID();
    const id = u.slice(0, 8) + u.slice(9, 13) + u.slice(14, 18) + u.slice(19, 23) + u.slice(24);
    if (!DIGIT_RUN.test(id)) return id;
  }
}

/** 16 lower-case hex digits, not all zero (its first is the UUID's variant digit, 8 to b). */
export function newSpanId(): string {
  for (;;) {
    const u = randomUUID();
    const id = u.slice(19, 23) + u.slice(24);
    if (!DIGIT_RUN.test(id)) return id;
  }
}

/** True when no run of 12 digits or more is in `id`, so the log scrub keeps it whole. */
export function survivesScrub(id: string): boolean {
  return !DIGIT_RUN.test(id);
}
