/**
 * Calls in flight, owned by one server, with a budget that no agency can take from the others.
 *
 *  - `max` calls at once in all, and at most `perAgency` for one agency (a stream holds its slot for its life);
 *  - each registered agency is guaranteed `max / agencies` slots (at least 1): a call within its guarantee is
 *    admitted whenever any slot is free;
 *  - beyond its guarantee an agency borrows, but only while the free slots exceed what the other agencies'
 *    unused guarantees still need, capped at `reserve` slots: so agencies that are not over their share are
 *    still served while others hold every slot they could get, as long as fewer than `reserve` of their calls
 *    are in flight together (with `reserve` = `max`, every guarantee is exact; with thousands of agencies that
 *    would leave almost nothing to borrow, hence the cap);
 *  - streams are also capped per agency (`streamsPerAgency`), since an idle stream costs a slot for a long time.
 *
 * The unused guarantees are kept as a running sum, so a decision is O(1) however many agencies there are.
 * Two gateways in one process (the replica tests) each have their own.
 */
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { RefusalObserver, RefusalReason } from './refusals.js';

export interface InFlightLimits {
  /** Calls handled at once, across agencies and methods. */
  readonly max: number;
  /** Calls one agency may have at once. */
  readonly perAgency: number;
  /** Free slots held back for agencies within their guarantee (default max / 4). */
  readonly reserve?: number;
  /** Streams one agency may have open at once (default: no cap beyond perAgency). */
  readonly streamsPerAgency?: number;
  /** How many agencies share the budget (the registry's size; read on every call, may change on reload). */
  readonly agencies?: () => number;
  readonly observer?: RefusalObserver;
}

export type SlotKind = 'call' | 'stream';

interface Use {
  calls: number;
  streams: number;
}

export class InFlight {
  #total = 0;
  readonly #byAgency = new Map<string, Use>();
  readonly #reserve: number;
  #agencies = 0;
  #guarantee = 0;
  /** Σ over registered agencies of max(0, guarantee − calls): slots still owed to agencies within their share. */
  #owed = 0;

  constructor(private readonly limits: InFlightLimits) {
    this.#reserve = Math.max(0, Math.floor(limits.reserve ?? limits.max / 4));
    this.#share(limits.agencies?.() ?? 1);
  }

  /** Calls being handled now. */
  get total(): number {
    return this.#total;
  }

  /** Calls `agency` has in flight now. */
  of(agency: string): number {
    return this.#byAgency.get(agency)?.calls ?? 0;
  }

  /** Takes a slot for `agency`, or throws RESOURCE_EXHAUSTED; returns the function that gives it back (once). */
  enter(agency: string, kind: SlotKind = 'call'): () => void {
    const n = this.limits.agencies?.();
    if (n !== undefined && n !== this.#agencies) this.#share(n);
    const use = this.#byAgency.get(agency) ?? { calls: 0, streams: 0 };
    if (use.calls >= this.limits.perAgency) this.#refuse('agency_busy', 'this agency has too many calls in progress; retry shortly');
    if (kind === 'stream' && this.limits.streamsPerAgency !== undefined && use.streams >= this.limits.streamsPerAgency)
      this.#refuse('agency_streams', 'this agency has too many streams open; close one or retry shortly');
    const free = this.limits.max - this.#total;
    if (free <= 0) this.#refuse('gateway_busy', 'the gateway is at capacity; retry shortly');
    const within = use.calls < this.#guarantee;
    if (!within && free <= Math.min(this.#owed, this.#reserve))
      this.#refuse('reserved_for_others', 'this agency is over its share and the rest is kept for other agencies; retry shortly');
    if (within) this.#owed--;
    use.calls++;
    if (kind === 'stream') use.streams++;
    this.#byAgency.set(agency, use);
    this.#total++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#total--;
      use.calls--;
      if (kind === 'stream') use.streams--;
      if (use.calls < this.#guarantee) this.#owed++;
      if (use.calls === 0 && this.#byAgency.get(agency) === use) this.#byAgency.delete(agency);
    };
  }

  /** Recomputes the guarantee when the number of agencies changes. */
  #share(agencies: number): void {
    this.#agencies = Math.max(1, agencies);
    this.#guarantee = Math.max(1, Math.floor(this.limits.max / this.#agencies));
    let owed = this.#agencies * this.#guarantee;
    for (const u of this.#byAgency.values()) owed -= Math.min(u.calls, this.#guarantee);
    this.#owed = Math.max(0, owed);
  }

  #refuse(reason: RefusalReason, message: string): never {
    notify(this.limits.observer, (o) => o.refused(reason));
    throw new GatewayError('RESOURCE_EXHAUSTED', message, { details: { 'retry-after-ms': '100' } });
  }
}
