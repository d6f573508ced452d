/**
 * Circuit breakers, one per Redis node (the whole server for a single node; each slot owner of a cluster), as
 * pure bookkeeping: the connection decides what a failure is and when to probe, this only counts.
 *
 * A breaker opens after `threshold` failures in a row (a success resets the count), or at once when told the
 * node is gone (its connection closed). While open it allows nothing; the connection probes the node and
 * closes the breaker on the first good answer. Nodes never seen are closed, so a node that takes over slots
 * after a failover is tried at once.
 */

interface Breaker {
  failures: number;
  open: boolean;
}

export class CircuitBreakers {
  readonly #threshold: number;
  readonly #nodes = new Map<string, Breaker>();

  constructor(threshold: number) {
    this.#threshold = Math.max(1, Math.floor(threshold));
  }

  allows(node: string): boolean {
    return !this.#nodes.get(node)?.open;
  }

  succeeded(node: string): void {
    const b = this.#nodes.get(node);
    if (b) b.failures = 0;
  }

  /** Counts a failure; true when this one opened the breaker. */
  failed(node: string): boolean {
    const b = this.#get(node);
    if (b.open) return false;
    if (++b.failures < this.#threshold) return false;
    b.open = true;
    return true;
  }

  /** Opens the breaker now; true when it was closed. */
  trip(node: string): boolean {
    const b = this.#get(node);
    if (b.open) return false;
    b.open = true;
    return true;
  }

  /** Closes the breaker (the node answered a probe) and forgets it; true when it was open. */
  close(node: string): boolean {
    const was = this.#nodes.get(node)?.open ?? false;
    this.#nodes.delete(node);
    return was;
  }

  /** The nodes whose breaker is open. */
  open(): string[] {
    return [...this.#nodes].filter(([, b]) => b.open).map(([n]) => n);
  }

  #get(node: string): Breaker {
    let b = this.#nodes.get(node);
    if (!b) this.#nodes.set(node, (b = { failures: 0, open: false }));
    return b;
  }
}
