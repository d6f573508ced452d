/**
 * The live policy: the agency registry and the legal-basis table, read from their files and swapped atomically
 * on reload (SIGHUP or a change of either file). A file that does not parse leaves the running policy in place
 * and is reported; requests in flight keep the snapshot they started with.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { parseAgencyRegistry, type AgencyRegistry } from '../core/agency-registry.js';
import { parseLegalBasisTable, type LegalBasisTable } from '../core/legal-basis.js';
import type { Logger } from '../log/logger.js';

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
  const registry0 = parseAgencyRegistry(JSON.parse(readFileSync(src.agenciesFile, 'utf8')));
  const registry = src.adjustRegistry ? src.adjustRegistry(registry0) : registry0;
  const table = parseLegalBasisTable(JSON.parse(readFileSync(src.legalBasisFile, 'utf8')), new Set(registry.agencies.keys()));
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
