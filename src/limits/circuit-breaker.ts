/**
 * Circuit breakers, one per key, as pure bookkeeping: the caller decides what a failure is; this only counts,
 * and keeps the time. Two users: the Redis connection (one breaker per node; it probes an open node itself, with
 * a PING, and closes the breaker on the first good answer) and the provider calls (one breaker per providing
 * agency; an open breaker lets one real call through as its probe once its cool-down has passed).
 *
 * A breaker opens after `threshold` failures in a row (a success resets the count), or at once when told the
 * thing behind it is gone (`trip`). While open it allows nothing. With `openMs` set it is half-open after that
 * long: `enter` lets exactly one call through as the probe; the probe's success closes the breaker, its failure
 * opens it for another `openMs`, and a probe that ends with no verdict (its caller gave up) lets the next call
 * probe. Without `openMs` an open breaker stays open until `close` (the Redis connection's own probe).
 * Keys never seen are closed, so a node that takes over slots after a failover is tried at once.
 *
 * Time comes from `clock` (ms), so the tests drive it in milliseconds without waiting. Every operation is one
 * map lookup; nothing is allocated per call once a key has been seen.
 */

export type BreakerState = 'closed' | 'open' | 'half_open';

/** What `enter` lets a call do: go as usual, go as the one probe of an open breaker, or not go. */
export type BreakerEntry = 'closed' | 'probe' | 'open';

export interface BreakerOptions {
  /** After this long open, one call may probe (half-open); unset: open until `close`. */
  readonly openMs?: number;
  /** Milliseconds (default Date.now). */
  readonly clock?: () => number;
}

interface Breaker {
  failures: number;
  open: boolean;
  /** When it opened (or its last probe failed). */
  openedAt: number;
  /** Its probe is in flight. */
  probing: boolean;
}

export class CircuitBreakers {
  readonly #threshold: number;
  readonly #openMs: number | undefined;
  readonly #now: () => number;
  readonly #keys = new Map<string, Breaker>();

  constructor(threshold: number, opts: BreakerOptions = {}) {
    this.#threshold = Math.max(1, Math.floor(threshold));
    this.#openMs = opts.openMs === undefined ? undefined : Math.max(0, opts.openMs);
    this.#now = opts.clock ?? Date.now;
  }

  /** Whether the breaker is closed (no state change: for callers that probe by themselves). */
  allows(key: string): boolean {
    return !this.#keys.get(key)?.open;
  }

  /**
   * Whether a call may go now: 'closed' as usual; 'probe' as the one call that tests an open breaker whose
   * cool-down has passed (its outcome must be reported: `succeeded`, `failed` or `abandoned`); 'open' not at all.
   */
  enter(key: string): BreakerEntry {
    const b = this.#keys.get(key);
    if (!b?.open) return 'closed';
    if (b.probing || this.#openMs === undefined || this.#now() - b.openedAt < this.#openMs) return 'open';
    b.probing = true;
    return 'probe';
  }

  /** A call answered: resets the count; a probe's answer closes the breaker. True when this closed it. */
  succeeded(key: string): boolean {
    const b = this.#keys.get(key);
    if (!b) return false;
    b.failures = 0;
    if (!b.probing) return false;
    this.#keys.delete(key);
    return true;
  }

  /** Counts a failure; true when this one opened the breaker. A failed probe keeps it open for another cool-down. */
  failed(key: string): boolean {
    const b = this.#get(key);
    if (b.open) {
      if (b.probing) {
        b.probing = false;
        b.openedAt = this.#now();
      }
      return false;
    }
    if (++b.failures < this.#threshold) return false;
    b.open = true;
    b.openedAt = this.#now();
    return true;
  }

  /** A call that ended with no verdict on the thing behind the breaker (its caller gave up): the next may probe. */
  abandoned(key: string): void {
    const b = this.#keys.get(key);
    if (b) b.probing = false;
  }

  /** Opens the breaker now; true when it was closed. */
  trip(key: string): boolean {
    const b = this.#get(key);
    if (b.open) return false;
    b.open = true;
    b.openedAt = this.#now();
    return true;
  }

  /** Closes the breaker (the node answered a probe) and forgets it; true when it was open. */
  close(key: string): boolean {
    const was = this.#keys.get(key)?.open ?? false;
    this.#keys.delete(key);
    return was;
  }

  state(key: string): BreakerState {
    const b = this.#keys.get(key);
    if (!b?.open) return 'closed';
    return b.probing || (this.#openMs !== undefined && this.#now() - b.openedAt >= this.#openMs) ? 'half_open' : 'open';
  }

  /** Until the next probe may go, ms (0 when closed, or when one may go now). */
  retryAfterMs(key: string): number {
    const b = this.#keys.get(key);
    if (!b?.open || this.#openMs === undefined) return 0;
    return Math.max(0, b.openedAt + this.#openMs - this.#now());
  }

  /** The keys whose breaker is open. */
  open(): string[] {
    return [...this.#keys].filter(([, b]) => b.open).map(([n]) => n);
  }

  #get(key: string): Breaker {
    let b = this.#keys.get(key);
    if (!b) this.#keys.set(key, (b = { failures: 0, open: false, openedAt: 0, probing: false }));
    return b;
  }
}
