/**
 * The live policy: the agency registry and the legal-basis table, read from their files and swapped atomically
 * on reload (SIGHUP, or a change of either file). A file that does not parse leaves the running policy in place
 * and is reported; requests in flight keep the snapshot they started with. Errors name the file, with the
 * line:column of a JSON syntax error or the field path of a schema error.
 *
 * Watching survives Kubernetes ConfigMap updates. A ConfigMap volume holds `..<timestamp>/` directories with
 * the files, a `..data` link to the current one, and each file as a link through `..data`; an update writes a
 * new timestamped directory, renames a new `..data_tmp` link over `..data` (atomic) and deletes the old
 * directory. A watch on the file follows the links to the old directory's file, sees it deleted once, and is
 * dead after that: so the first update used to be applied and no later one until SIGHUP. The directories of
 * the files are watched instead (the `..data` rename, and plain edits or editors' rename-over saves of the
 * files), and the files themselves as well, re-armed after every reload (a file that is a link to another
 * directory, edited in place there). Events are debounced: one reload per burst.
 *
 * Versions (`linkgw_policy_info`): the legal-basis table's `version`, and the registry's optional `version`,
 * or, when it declares none, `sha256:` and the first 12 hex digits of the hash of the registry file.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, relative } from 'node:path';
import { parseAgencyRegistry, type AgencyRegistry } from '../core/agency-registry.js';
import { parseLegalBasisTable, selfInformationProblems, type LegalBasisTable } from '../core/legal-basis.js';
import { notify } from '../core/observer.js';
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

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyFileError(file, `${shown(file)}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/**
 * Parses a JSON file's text; a syntax error names the file and the line:column where parsing stopped, and
 * `parse` errors (the strict schema checks of the core, which name the field path) are prefixed with the file.
 */
function parseJsonText<T>(file: string, text: string, parse: (doc: unknown) => T): T {
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

/** Reads and parses a JSON file (see parseJsonText for the errors). */
export function readJsonFile<T>(file: string, parse: (doc: unknown) => T): T {
  return parseJsonText(file, readText(file), parse);
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

/** Which policy is in force, as `linkgw_policy_info` shows it. */
export interface PolicyVersions {
  readonly legalBasis: string;
  /** The registry's declared `version`, or `sha256:` and 12 hex digits of the file's hash. */
  readonly registry: string;
}

function readPolicy(src: PolicySources): { snapshot: PolicySnapshot; versions: PolicyVersions } {
  const text = readText(src.agenciesFile);
  const registry0 = parseJsonText(src.agenciesFile, text, (doc) => checkProviderAddresses(parseAgencyRegistry(doc)));
  const registry = src.adjustRegistry ? src.adjustRegistry(registry0) : registry0;
  const table = readJsonFile(src.legalBasisFile, (doc) => {
    const t = parseLegalBasisTable(doc, new Set(registry.agencies.keys()));
    const problems = selfInformationProblems(t, registry);
    if (problems.length) throw new Error(`legal basis: ${problems.join('; ')}`);
    return t;
  });
  const registryVersion = registry0.version ?? `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
  return { snapshot: { registry, table }, versions: { legalBasis: table.version, registry: registryVersion } };
}

export function loadPolicy(src: PolicySources): PolicySnapshot {
  return readPolicy(src).snapshot;
}

export interface PolicyObserver {
  /** A reload was tried (SIGHUP or a file change): it took effect, or the previous policy stays. */
  policyReloaded(result: 'success' | 'failure'): void;
}

/** How long file events must be quiet before the files are read (a ConfigMap swap is a burst of a few events). */
const DEBOUNCE_MS = 100;

export class Policy {
  #current: PolicySnapshot;
  #versions: PolicyVersions;
  readonly #src: PolicySources;
  readonly #log: Logger;
  #observer: PolicyObserver | undefined;
  readonly #dirWatchers: FSWatcher[] = [];
  #fileWatchers: FSWatcher[] = [];
  #watching = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(src: PolicySources, log: Logger) {
    this.#src = src;
    this.#log = log;
    ({ snapshot: this.#current, versions: this.#versions } = readPolicy(src));
  }

  get current(): PolicySnapshot {
    return this.#current;
  }

  get versions(): PolicyVersions {
    return this.#versions;
  }

  /** Tells `observer` of every reload (the metrics; set once the metrics exist, after the policy). */
  observe(observer: PolicyObserver): void {
    this.#observer = observer;
  }

  /** Re-reads both files; returns whether the new policy took effect. */
  reload(): boolean {
    try {
      const { snapshot, versions } = readPolicy(this.#src);
      this.#current = snapshot;
      this.#versions = versions;
      this.#log.info('policy reloaded', {
        agencies: snapshot.registry.agencies.size,
        legalBasisRows: snapshot.table.rows.length,
        tableVersion: versions.legalBasis,
        registryVersion: versions.registry,
      });
      notify(this.#observer, (o) => o.policyReloaded('success'));
      return true;
    } catch (err) {
      this.#log.error('policy reload failed; the previous policy stays in force', { err });
      notify(this.#observer, (o) => o.policyReloaded('failure'));
      return false;
    }
  }

  /**
   * Reloads whenever either file changes, however it is changed: edited in place, replaced by a rename, or
   * swapped by Kubernetes through the `..data` link (see the top of this file). Debounced.
   */
  watchFiles(): void {
    if (this.#watching || this.#closed) return;
    this.#watching = true;
    const names = new Map<string, Set<string>>();
    for (const f of this.#files()) names.set(dirname(f), (names.get(dirname(f)) ?? new Set()).add(basename(f)));
    for (const [dir, files] of names) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          // `..data`, `..data_tmp` and `..<timestamp>` are the kubelet's; anything else not ours is ignored.
          const n = name === null ? null : String(name);
          if (n === null || files.has(n) || n.startsWith('..')) this.#changed();
        });
        w.on('error', (err) => this.#log.warn('cannot watch a policy directory any more; reload with SIGHUP', { dir, err }));
        this.#dirWatchers.push(w);
      } catch (err) {
        this.#log.warn('cannot watch a policy directory; reload with SIGHUP', { dir, err });
      }
    }
    this.#armFileWatchers();
  }

  #files(): string[] {
    return [this.#src.agenciesFile, this.#src.legalBasisFile];
  }

  /** Watches each file (following links) anew: a watch ends with the file it was put on, replaced or deleted. */
  #armFileWatchers(): void {
    for (const w of this.#fileWatchers) w.close();
    this.#fileWatchers = [];
    for (const f of this.#files()) {
      try {
        const w = watch(f, { persistent: false }, () => this.#changed());
        w.on('error', () => undefined);
        this.#fileWatchers.push(w);
      } catch {
        // Missing between a rename and the next: the directory watch sees it come back.
      }
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.reload();
      this.#armFileWatchers();
    }, DEBOUNCE_MS);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of [...this.#dirWatchers, ...this.#fileWatchers]) w.close();
    this.#fileWatchers = [];
  }
}
