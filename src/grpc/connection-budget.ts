/**
 * Established agency connections (TLS done, agency identified), budgeted per agency
 * (docs/adr/0014-connection-budgets.md):
 *
 *  - an agency holds at most `perAgency` connections;
 *  - `reserve` of the `total` connections are kept for agencies within their share (fewer than `share`
 *    connections): an agency at or over its share takes a connection only while more than `reserve` are free.
 *
 * So one agency, or a few, holding connections up to their caps cannot lock the others out: an agency with
 * fewer than `share` connections always finds room, until the reserve itself is spent by agencies each within
 * their share (sized in the ADR). Pure bookkeeping, O(1) per connection.
 */
export interface ConnectionBudgetLimits {
  readonly total: number;
  readonly perAgency: number;
  readonly share: number;
  readonly reserve: number;
}

export class ConnectionBudget {
  readonly #held = new Map<string, number>();
  #total = 0;

  constructor(readonly limits: ConnectionBudgetLimits) {}

  /** Takes a connection for `agency`, or returns false when its budget (or the gateway's) is spent. */
  take(agency: string): boolean {
    const n = this.#held.get(agency) ?? 0;
    const l = this.limits;
    if (n >= l.perAgency || this.#total >= l.total) return false;
    if (n >= l.share && l.total - this.#total <= l.reserve) return false;
    this.#held.set(agency, n + 1);
    this.#total++;
    return true;
  }

  release(agency: string): void {
    const n = this.#held.get(agency);
    if (n === undefined) return;
    if (n > 1) this.#held.set(agency, n - 1);
    else this.#held.delete(agency);
    this.#total--;
  }

  held(agency?: string): number {
    return agency === undefined ? this.#total : (this.#held.get(agency) ?? 0);
  }
}
