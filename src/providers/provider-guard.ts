/**
 * What keeps one providing agency's trouble its own (docs/adr/0013-provider-budgets-and-breakers.md): around
 * the provider clients, each provider gets
 *
 *  - a budget of calls in flight (`maxInFlight`): a provider that accepts connections and never answers holds
 *    at most that many of the gateway's calls until the provider timeout, so the requester's other queries and
 *    the gateway's other slots stay free; past it a query to that provider is refused at once
 *    (RESOURCE_EXHAUSTED, `retry-after-ms`);
 *  - a circuit breaker (src/limits/circuit-breaker.ts): after `failureThreshold` calls in a row that got no
 *    answer (UNAVAILABLE, or DEADLINE_EXCEEDED after the provider had a fair chance), queries to it fail at
 *    once (UNAVAILABLE, `retry-after-ms` = the time until the next probe) instead of each waiting for the
 *    timeout; every `openMs` one real query goes through as the probe, and its answer closes the breaker.
 *
 * What counts against a provider is only what says something about it. Any answer, an error status included,
 * shows it is there. A call its requester cancelled, or whose requester's own deadline ended it, says nothing
 * (a requester with tiny deadlines must not be able to open the breaker for everyone); neither does a
 * DEADLINE_EXCEEDED when the provider had less than `fairWaitMs`.
 *
 * Per call: two map lookups, no allocation beyond the inner call's. Providers come from the registry, so the
 * maps (and the metric labels built from them) are bounded.
 */
import { status } from '@grpc/grpc-js';
import { notify } from '../core/observer.js';
import { CircuitBreakers, type BreakerState } from '../limits/circuit-breaker.js';
import type { RefusalReason } from '../limits/refusals.js';
import type { Logger } from '../log/logger.js';
import type { ProvideCall, ProvideResult, Providers } from '../service/ports.js';

export interface ProviderGuardObserver {
  refused(reason: RefusalReason): void;
}

export interface ProviderGuardOptions {
  /** Calls to one provider at once. */
  readonly maxInFlight: number;
  /** Calls in a row without an answer that open a provider's breaker. */
  readonly failureThreshold: number;
  /** How long an open breaker refuses before it lets one probe through, ms. */
  readonly openMs: number;
  /** A DEADLINE_EXCEEDED counts against the provider only when it had at least this long, ms. */
  readonly fairWaitMs: number;
  /** Milliseconds (default Date.now): the breaker's time and the calls' durations. */
  readonly clock?: () => number;
  /** In [0, 1) (default Math.random): spreads the `retry-after-ms` of refusals. */
  readonly random?: () => number;
  readonly observer?: ProviderGuardObserver;
  readonly log?: Logger;
}

/**
 * What a refused query is told to wait before retrying when the provider is merely at its budget, ms, and at
 * least when it is down. Each refusal adds up to as much again (or half the cool-down, if longer) at random:
 * requesters that honour it would otherwise all come back in the same instant (the probe's), each holding a
 * slot of their own while their refusal is recorded.
 */
const BUSY_RETRY_MS = 100;

interface Use {
  calls: number;
}

export class GuardedProviders implements Providers {
  readonly #inner: Providers;
  readonly #o: ProviderGuardOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #spreadMs: number;
  readonly #breakers: CircuitBreakers;
  readonly #use = new Map<string, Use>();

  constructor(inner: Providers, o: ProviderGuardOptions) {
    this.#inner = inner;
    this.#o = o;
    this.#now = o.clock ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#spreadMs = Math.max(BUSY_RETRY_MS, o.openMs / 2);
    this.#breakers = new CircuitBreakers(o.failureThreshold, { openMs: o.openMs, clock: this.#now });
  }

  /** Calls to `provider` in flight now. */
  inFlight(provider: string): number {
    return this.#use.get(provider)?.calls ?? 0;
  }

  breakerState(provider: string): BreakerState {
    return this.#breakers.state(provider);
  }

  async provide(call: ProvideCall): Promise<ProvideResult> {
    const id = call.provider;
    const entry = this.#breakers.enter(id);
    if (entry === 'open') {
      notify(this.#o.observer, (o) => o.refused('provider_down'));
      // Until the next probe may go (while a probe is out, at least as long as a busy provider's retry).
      return { kind: 'refused', reason: 'down', retryAfterMs: Math.max(BUSY_RETRY_MS, this.#breakers.retryAfterMs(id)) + this.#jitter(this.#spreadMs), grpcStatus: status.UNAVAILABLE };
    }
    let use = this.#use.get(id);
    if (!use) this.#use.set(id, (use = { calls: 0 }));
    if (use.calls >= this.#o.maxInFlight) {
      if (entry === 'probe') this.#breakers.abandoned(id);
      notify(this.#o.observer, (o) => o.refused('provider_busy'));
      return { kind: 'refused', reason: 'busy', retryAfterMs: BUSY_RETRY_MS + this.#jitter(BUSY_RETRY_MS), grpcStatus: status.RESOURCE_EXHAUSTED };
    }
    use.calls++;
    const started = this.#now();
    let result: ProvideResult | undefined;
    try {
      result = await this.#inner.provide(call);
      return result;
    } finally {
      use.calls--;
      this.#judge(id, call, result, this.#now() - started);
    }
  }

  #jitter(spread: number): number {
    return Math.floor(this.#random() * spread);
  }

  /** What the call says about the provider, told to its breaker. */
  #judge(id: string, call: ProvideCall, r: ProvideResult | undefined, tookMs: number): void {
    const noAnswer =
      r !== undefined && r.kind === 'failed' && !call.signal?.aborted && (r.code === 'UNAVAILABLE' || (r.code === 'DEADLINE_EXCEEDED' && tookMs >= this.#o.fairWaitMs));
    if (noAnswer) {
      if (this.#breakers.failed(id)) this.#o.log?.warn('provider down: not called until a probe answers', { provider: id, failures: this.#o.failureThreshold, probeEveryMs: this.#o.openMs });
      return;
    }
    const answered = r !== undefined && (r.kind === 'provided' || r.kind === 'not-found' || (r.kind === 'failed' && r.code === 'INTERNAL'));
    if (answered) {
      if (this.#breakers.succeeded(id)) this.#o.log?.info('provider up: a probe was answered', { provider: id });
    } else this.#breakers.abandoned(id);
  }
}
