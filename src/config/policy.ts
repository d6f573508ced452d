/**
 * The live policy: the agency registry and the legal-basis table, read from their files and swapped atomically
 * on reload (SIGHUP or a change of either file). A file that does not parse leaves the running policy in place
 * and is reported; requests in flight keep the snapshot they started with. Errors name the file, with the
 * line:column of a JSON syntax error or the field path of a schema error.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { relative } from 'node:path';
import { parseAgencyRegistry, type AgencyRegistry } from '../core/agency-registry.js';
import { parseLegalBasisTable, type LegalBasisTable } from '../core/legal-basis.js';
import type { Logger } from '../log/logger.js';
import { addressProblem } from './settings.js';

/** A policy file that cannot be used: its message starts with the file (and line:column for a syntax error). */
export class PolicyFileError extends Error {
  override readonly name = 'PolicyFileError';
  constructor(
    readonly file: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }
}

/** The file as messages show it: relative to the working directory when inside it. */
function shown(file: string): string {
  const r = relative(process.cwd(), file);
  return r && !r.startsWith('..') ? r : file;
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/**
 * Reads and parses a JSON file; a syntax error names the file and the line:column where parsing stopped, and
 * `parse` errors (the strict schema checks of the core, which name the field path) are prefixed with the file.
 */
export function readJsonFile<T>(file: string, parse: (doc: unknown) => T): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyFileError(file, `${shown(file)}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const at = /at position (\d+)/.exec(msg);
    const offset = at ? Number(at[1]) : text.length;
    const { line, column } = lineColumn(text, offset);
    const what = msg.replace(/\s*in JSON at position \d+.*$/, '').replace(/,? ".*" is not valid JSON$/, '');
    throw new PolicyFileError(file, `${shown(file)}:${line}:${column}: not valid JSON: ${what}`, { cause: err });
  }
  try {
    return parse(doc);
  } catch (err) {
    throw new PolicyFileError(file, `${shown(file)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Checks each provider address of the registry as host:port, naming the entry's field path. */
function checkProviderAddresses(r: AgencyRegistry): AgencyRegistry {
  [...r.agencies.values()].forEach((a, i) => {
    const p = a.providerAddress === undefined ? undefined : addressProblem(a.providerAddress);
    if (p) throw new Error(`registry.agencies[${i}].provider.address: ${p}`);
  });
  return r;
}

export interface PolicySources {
  readonly agenciesFile: string;
  readonly legalBasisFile: string;
  /** Applied after every load (the embedded simulated agencies' addresses, in the default setup). */
  readonly adjustRegistry?: (r: AgencyRegistry) => AgencyRegistry;
}

export interface PolicySnapshot {
  readonly registry: AgencyRegistry;
  readonly table: LegalBasisTable;
}

export function loadPolicy(src: PolicySources): PolicySnapshot {
  const registry0 = readJsonFile(src.agenciesFile, (doc) => checkProviderAddresses(parseAgencyRegistry(doc)));
  const registry = src.adjustRegistry ? src.adjustRegistry(registry0) : registry0;
  const table = readJsonFile(src.legalBasisFile, (doc) => parseLegalBasisTable(doc, new Set(registry.agencies.keys())));
  return { registry, table };
}

export class Policy {
  #current: PolicySnapshot;
  readonly #src: PolicySources;
  readonly #log: Logger;
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(src: PolicySources, log: Logger) {
    this.#src = src;
    this.#log = log;
    this.#current = loadPolicy(src);
  }

  get current(): PolicySnapshot {
    return this.#current;
  }

  /** Re-reads both files; returns whether the new policy took effect. */
  reload(): boolean {
    try {
      this.#current = loadPolicy(this.#src);
      this.#log.info('policy reloaded', { agencies: this.#current.registry.agencies.size, legalBasisRows: this.#current.table.rows.length, tableVersion: this.#current.table.version });
      return true;
    } catch (err) {
      this.#log.error('policy reload failed; the previous policy stays in force', { err });
      return false;
    }
  }

  /** Reloads when either file changes (debounced). */
  watchFiles(): void {
    for (const f of [this.#src.agenciesFile, this.#src.legalBasisFile]) {
      try {
        const w = watch(f, { persistent: false }, () => {
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => this.reload(), 100);
        });
        w.on('error', () => undefined);
        this.#watchers.push(w);
      } catch (err) {
        this.#log.warn('cannot watch a policy file; reload with SIGHUP', { file: f, err });
      }
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
  }
}
