/**
 * The policy in force and its reloads: `linkgw_policy_info{legal_basis_version,registry_version} 1`, one series
 * per replica (two versions side by side while a ConfigMap update propagates), and
 * `linkgw_policy_reloads_total{result="success"|"failure"}` (a failure leaves the previous policy in force), and
 * `linkgw_policy_reload_failed`: 1 while the newest reload failed, so that an alert on it resolves at the next
 * good reload (an alert on the failure counter's increase kept firing for its whole window after a fix).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PolicyObserver, PolicyVersions } from '../config/policy.js';

/** A version as a label value: a table's version is free text in its file; bound it. */
function label(v: string): string {
  return v.length <= 64 ? v : `${v.slice(0, 63)}…`;
}

export class PolicyMetrics implements PolicyObserver {
  readonly #reloads: Counter<'result'>;
  readonly #failed: Gauge;

  constructor(registry: Registry, versions: () => PolicyVersions) {
    new Gauge({
      name: 'linkgw_policy_info',
      help: 'The policy in force: the legal-basis table version and the registry version (its declared version, or sha256: of the file). Always 1.',
      labelNames: ['legal_basis_version', 'registry_version'],
      registers: [registry],
      collect() {
        const v = versions();
        this.reset();
        this.set({ legal_basis_version: label(v.legalBasis), registry_version: label(v.registry) }, 1);
      },
    });
    this.#reloads = new Counter({ name: 'linkgw_policy_reloads_total', help: 'Policy reloads (SIGHUP or a file change) by result: success, or failure (the previous policy stays).', labelNames: ['result'], registers: [registry] });
    // Both series exist from the start, so that increase() sees the first failure.
    for (const result of ['success', 'failure']) this.#reloads.inc({ result }, 0);
    this.#failed = new Gauge({ name: 'linkgw_policy_reload_failed', help: '1 while the newest policy reload failed (the previous policy stays in force); 0 after a good one, and at start.', registers: [registry] });
    this.#failed.set(0);
  }

  policyReloaded(result: 'success' | 'failure'): void {
    this.#reloads.inc({ result });
    this.#failed.set(result === 'failure' ? 1 : 0);
  }
}
