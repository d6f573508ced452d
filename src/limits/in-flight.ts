/**
 * Calls in flight, owned by one server: a cap for the whole gateway and a share per agency, so that one agency
 * (or a leaked certificate) cannot take every slot from the others. A stream holds its slot for its whole
 * life. Two gateways in one process (the replica tests) each have their own.
 */
import { GatewayError } from '../core/errors.js';

export interface InFlightLimits {
  /** Calls handled at once, across agencies and methods. */
  readonly max: number;
  /** Calls one agency may have at once. */
  readonly perAgency: number;
}

export class InFlight {
  #total = 0;
  readonly #byAgency = new Map<string, number>();

  constructor(private readonly limits: InFlightLimits) {}

  /** Calls being handled now. */
  get total(): number {
    return this.#total;
  }

  /** Calls `agency` has in flight now. */
  of(agency: string): number {
    return this.#byAgency.get(agency) ?? 0;
  }

  /** Takes a slot for `agency`, or throws RESOURCE_EXHAUSTED; returns the function that gives it back (once). */
  enter(agency: string): () => void {
    if (this.#total >= this.limits.max)
      throw new GatewayError('RESOURCE_EXHAUSTED', 'the gateway is at capacity; retry shortly', { details: { 'retry-after-ms': '100' } });
    const mine = this.#byAgency.get(agency) ?? 0;
    if (mine >= this.limits.perAgency)
      throw new GatewayError('RESOURCE_EXHAUSTED', 'this agency has too many calls in progress; retry shortly', { details: { 'retry-after-ms': '100' } });
    this.#total++;
    this.#byAgency.set(agency, mine + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#total--;
      const n = (this.#byAgency.get(agency) ?? 1) - 1;
      if (n > 0) this.#byAgency.set(agency, n);
      else this.#byAgency.delete(agency);
    };
  }
}
