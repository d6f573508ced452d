/**
 * Structured JSON-lines logger. One line per event, to a stream (stderr by default).
 *
 * Defence in depth for the first invariant: callers never log request fields, and on top of that every string
 * value is scrubbed of runs of 12 or 13 digits (personal and corporate numbers) and of anything shaped like an
 * agency code before it is written. The scrub costs a regex test per string; logs are not on the hot path.
 */
import type { Writable } from 'node:stream';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const DIGITS = /(?<![0-9])[0-9０-９]{12,13}(?![0-9])/g;
const CODE_SHAPE = /(?<![0-9A-Za-z])[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{28}(?![0-9A-Za-z])/g;

export function scrub(s: string): string {
  return s.replace(DIGITS, '[digits]').replace(CODE_SHAPE, '[code]');
}

function clean(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrub(v);
  if (v instanceof Error) {
    const o: Record<string, unknown> = { type: v.name, message: scrub(v.message) };
    const code = (v as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') o.code = code;
    if (v.cause !== undefined && depth < 3) o.cause = clean(v.cause, depth + 1);
    return o;
  }
  if (Array.isArray(v)) return depth > 4 ? '[…]' : v.map((x) => clean(x, depth + 1));
  if (v && typeof v === 'object') {
    if (depth > 4) return '[…]';
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = clean(x, depth + 1);
    return o;
  }
  return v;
}

export function createLogger(opts: { level?: Level; stream?: Writable; base?: Record<string, unknown> } = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const stream = opts.stream ?? process.stderr;
  const base = opts.base ?? {};
  // The base fields are scrubbed once, not on every line (the access log writes one line per call).
  let cleanBase: object | undefined;
  const write = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const line = { time: new Date().toISOString(), level, msg: scrub(msg), ...(cleanBase ??= clean(base) as object), ...(fields ? (clean(fields) as object) : {}) };
    stream.write(JSON.stringify(line) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ level: opts.level ?? 'info', stream, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (for tools that print their own output). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
