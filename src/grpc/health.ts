/**
 * grpc.health.v1, served by the gateway itself instead of grpc-health-check, so that health calls go through the
 * same pipeline as every other call (identity, in-flight budget and rate limit on the agency port), are parsed
 * with the same lenient protobuf-es deserializer (a malformed request is INVALID_ARGUMENT, where
 * grpc-health-check answered INTERNAL), and are bounded: a service name is at most 200 characters, a List
 * answers the few services the gateway has, and each Watch is a long-lived stream of the in-flight budget.
 *
 * The status is computed: NOT_SERVING while draining or while `ready()` says the gateway cannot record, so a
 * probe and a load balancer see what `/readyz` sees. Watch reports every change, checked every 500 ms.
 */
import { create } from '@bufbuild/protobuf';
import { GatewayError } from '../core/errors.js';
import { Health, HealthCheckResponse_ServingStatus as Serving, HealthCheckResponseSchema, HealthListResponseSchema, type HealthCheckResponse } from '../gen/grpc/health/v1/health_pb.js';
import type { ServiceMethods } from './implement.js';

const MAX_SERVICE_NAME = 200;
const WATCH_POLL_MS = 500;

export class HealthState {
  readonly #services: ReadonlySet<string>;
  #draining = false;

  /** `services`: the names a client may ask about ('' is the whole server). */
  constructor(
    services: readonly string[],
    private readonly ready: () => boolean = () => true,
  ) {
    this.#services = new Set(['', ...services]);
  }

  get services(): readonly string[] {
    return [...this.#services];
  }

  /** From now on every service is NOT_SERVING (shutdown). */
  drain(): void {
    this.#draining = true;
  }

  /** The status of `service`, or SERVICE_UNKNOWN for a name the gateway does not serve. */
  status(service: string): Serving {
    if (!this.#services.has(service)) return Serving.SERVICE_UNKNOWN;
    return !this.#draining && this.ready() ? Serving.SERVING : Serving.NOT_SERVING;
  }
}

function serviceName(s: string): string {
  if (s.length > MAX_SERVICE_NAME) throw new GatewayError('INVALID_ARGUMENT', `service: at most ${MAX_SERVICE_NAME} characters`);
  return s;
}

const answer = (status: Serving): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

/** The Health service's methods over a HealthState (for `implement`). */
export function healthMethods(state: HealthState): ServiceMethods<typeof Health> {
  return {
    check: async (req) => {
      const status = state.status(serviceName(req.service));
      if (status === Serving.SERVICE_UNKNOWN) throw new GatewayError('NOT_FOUND', 'unknown service');
      return answer(status);
    },
    list: async () =>
      create(HealthListResponseSchema, { statuses: Object.fromEntries(state.services.map((s) => [s, answer(state.status(s))])) }),
    watch: async (req, ctx, write) => {
      const name = serviceName(req.service);
      let last = state.status(name);
      await write(answer(last));
      // Until the client goes away (the call's signal aborts), report each change.
      await new Promise<void>((resolve, reject) => {
        const timer = setInterval(() => {
          const now = state.status(name);
          if (now === last) return;
          last = now;
          write(answer(now)).catch(stop);
        }, WATCH_POLL_MS);
        timer.unref();
        const stop = (err?: unknown) => {
          clearInterval(timer);
          ctx.signal.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err);
        };
        const onAbort = () => stop(ctx.signal.reason);
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

export { Health };
