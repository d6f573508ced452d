/**
 * The health port (LINKGW_HEALTH_LISTEN): grpc.health.v1 in plaintext and without client certificates, for the
 * kubelet's gRPC probe and grpc_health_probe, which cannot present an agency certificate. It serves nothing but
 * Health, reports what the agency port's health reports (NOT_SERVING while the gateway cannot record or is
 * draining), and is bounded on its own: a few calls at once, small messages, Watch streams counted, so probes
 * can never take budget from the agencies nor be starved by them. The agency port keeps requiring mTLS.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { AgencyEntry } from '../core/agency-registry.js';
import { InFlight } from '../limits/in-flight.js';
import type { RefusalObserver } from '../limits/refusals.js';
import type { Logger } from '../log/logger.js';
import { CallPipeline, type CallStep } from './call-pipeline.js';
import { contextStep, inFlightStep, observeStep, type CallObserver } from './call-steps.js';
import { Health, healthMethods, type HealthState } from './health.js';
import { implement } from './implement.js';

/** Who a probe is: no agency, no role (CallContext needs an entry; nothing here looks at its roles). */
const PROBE: AgencyEntry = { id: 'probe', name: 'health probe', roles: new Set(), certificateCommonName: '', certificateFingerprints: [] };

/** Probe calls at once: a kubelet sends one per probe and period; Watch streams count too. */
const MAX_PROBES = 32;

export interface HealthServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startHealthServer(listen: string, health: HealthState, log: Logger, observer?: CallObserver & RefusalObserver): Promise<HealthServer> {
  const probe: CallStep = (scope) => {
    scope.agency = PROBE;
  };
  const inFlight = new InFlight({ max: MAX_PROBES, perAgency: MAX_PROBES, streamsPerAgency: MAX_PROBES / 2, ...(observer ? { observer } : {}) });
  const pipeline = new CallPipeline([observeStep(log, observer), probe, contextStep(log), inFlightStep(inFlight)]);
  // A health request is a service name of at most 200 characters: 1 KiB is plenty, and bounds what a caller sends.
  const server = new Server({ 'grpc.max_receive_message_length': 1024, 'grpc.max_concurrent_streams': MAX_PROBES, 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
  const h = implement(Health, { pipeline, ...(observer ? { observer } : {}) }, healthMethods(health), { longLived: ['watch'] });
  server.addService(h.definition, h.implementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(listen, ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return {
    address: `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
