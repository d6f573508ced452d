/**
 * Each providing agency's budget and breaker (src/providers/provider-guard.ts), read at scrape time:
 *
 *   linkgw_provider_calls_in_flight{provider}          calls to it now (at most LINKGW_PROVIDER_MAX_IN_FLIGHT)
 *   linkgw_provider_breaker_state{provider,state}      1 for its breaker's state (closed, open, half_open), 0 for
 *                                                      the other two (the OpenMetrics StateSet shape)
 *
 * The providers are those of the registry in force (agencies with the provider role), so the labels are
 * bounded; one dropped from the registry leaves the series at the next scrape.
 */
import { Gauge, type Registry } from 'prom-client';
import type { BreakerState } from '../limits/circuit-breaker.js';

export interface ProviderGuardView {
  inFlight(provider: string): number;
  breakerState(provider: string): BreakerState;
}

const STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];

export function registerProviderMetrics(registry: Registry, providers: () => Iterable<string>, guard: ProviderGuardView): void {
  new Gauge({
    name: 'linkgw_provider_calls_in_flight',
    help: 'Calls to each providing agency in flight (its budget is LINKGW_PROVIDER_MAX_IN_FLIGHT).',
    labelNames: ['provider'],
    registers: [registry],
    collect() {
      this.reset();
      for (const provider of providers()) this.set({ provider }, guard.inFlight(provider));
    },
  });
  new Gauge({
    name: 'linkgw_provider_breaker_state',
    help: "Each providing agency's circuit breaker: 1 for its state (closed; open: its queries fail at once; half_open: a probe may go or is out), 0 for the others.",
    labelNames: ['provider', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const provider of providers()) {
        const now = guard.breakerState(provider);
        for (const state of STATES) this.set({ provider, state }, state === now ? 1 : 0);
      }
    },
  });
}
