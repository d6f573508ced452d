/**
 * The standard gRPC server metrics under the names of go-grpc-prometheus (and go-grpc-middleware's prometheus
 * provider), so the dashboards and alerts SREs already have for gRPC services work on the gateway unchanged:
 *
 *   grpc_server_started_total{grpc_service,grpc_method,grpc_type}
 *   grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}
 *   grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type}   (histogram)
 *   grpc_server_msg_received_total{grpc_service,grpc_method,grpc_type}
 *   grpc_server_msg_sent_total{grpc_service,grpc_method,grpc_type}
 *
 * `grpc_code` takes the values Go prints for a status (`OK`, `InvalidArgument`, `Unavailable`, …), as those
 * libraries do: queries written for them compare against exactly these strings. Labels come from the service
 * definitions and the closed set of status codes, never from a request.
 */
import type { DescService } from '@bufbuild/protobuf';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RpcInfo, RpcType } from '../grpc/call-pipeline.js';

/** One method of one service, as the labels name it: `service` is the full name (`linkage.v1.LinkageGateway`). */
export type Rpc = Pick<RpcInfo, 'service' | 'method' | 'type'>;

/** Status codes as go-grpc-prometheus labels them (Go's `codes.Code.String()`), by number. */
export const GRPC_CODE_LABELS: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

// The canonical names (`UNAVAILABLE`, `CANCELLED`, as grpc-js and the gateway's logs spell them) mapped to the
// Go labels; the Go labels map to themselves.
const BY_NAME = new Map<string, string>();
for (const [i, label] of GRPC_CODE_LABELS.entries()) {
  BY_NAME.set(label, label);
  BY_NAME.set(label.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase(), label);
}
BY_NAME.set('CANCELLED', 'Canceled');

/** The `grpc_code` label of a numeric status; anything outside 0..16 is `Unknown`, as in grpc-go. */
export function grpcCodeLabel(code: number): string {
  return GRPC_CODE_LABELS[code] ?? 'Unknown';
}

/** The `grpc_code` label of a status name, canonical (`UNAVAILABLE`) or Go-style (`Unavailable`). */
export function grpcCodeLabelOf(name: string): string {
  return BY_NAME.get(name) ?? 'Unknown';
}

const TYPE_OF_KIND: Record<DescService['methods'][number]['methodKind'], RpcType> = {
  unary: 'unary',
  client_streaming: 'client_stream',
  server_streaming: 'server_stream',
  bidi_streaming: 'bidi_stream',
};

/** Every method of the given services, with its type from the descriptor. */
export function rpcsOf(services: readonly DescService[]): Rpc[] {
  return services.flatMap((s) => s.methods.map((m) => ({ service: s.typeName, method: m.name, type: TYPE_OF_KIND[m.methodKind] })));
}

/**
 * Handling-time buckets: those of the gateway's own latency histogram (which has 25 ms, the QueryInformation
 * p99 budget, and 0.1 s, the latency SLO threshold) plus 10 s for long streams. go-grpc-prometheus uses
 * Prometheus' DefBuckets (5 ms .. 10 s), too coarse below 5 ms for calls that take about 1 ms.
 */
export const HANDLING_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type RpcLabel = 'grpc_service' | 'grpc_method' | 'grpc_type';

interface Inc {
  inc(value?: number): void;
}

/** One method's series, looked up once (prom-client's children keep their label objects: no allocation per call). */
interface RpcSeries {
  readonly started: Inc;
  readonly received: Inc;
  readonly sent: Inc;
  readonly handling: { observe(value: number): void };
  /** grpc_server_handled_total by Go code label, made on first use. */
  readonly handled: Map<string, Inc>;
}

export class GrpcServerMetrics {
  readonly #started: Counter<RpcLabel>;
  readonly #handled: Counter<RpcLabel | 'grpc_code'>;
  readonly #handling: Histogram<RpcLabel>;
  readonly #received: Counter<RpcLabel>;
  readonly #sent: Counter<RpcLabel>;
  /** Series by the RpcInfo object a call carries (one per method for the server's lifetime). */
  readonly #series = new WeakMap<Rpc, RpcSeries>();

  /**
   * Registers the five families on `registry`. With `rpcs`, every series (`handled` for every code) starts at
   * 0, as go-grpc-prometheus' InitializeMetrics does, so `increase()` sees the first error of a method too.
   */
  constructor(registry: Registry, rpcs: readonly Rpc[] = []) {
    const registers = [registry];
    this.#started = new Counter({ name: 'grpc_server_started_total', help: 'Total number of RPCs started on the server.', labelNames: ['grpc_service', 'grpc_method', 'grpc_type'], registers });
    this.#handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_service', 'grpc_method', 'grpc_type', 'grpc_code'],
      registers,
    });
    this.#handling = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames: ['grpc_service', 'grpc_method', 'grpc_type'],
      buckets: HANDLING_BUCKETS,
      registers,
    });
    this.#received = new Counter({ name: 'grpc_server_msg_received_total', help: 'Total number of RPC stream messages received on the server.', labelNames: ['grpc_service', 'grpc_method', 'grpc_type'], registers });
    this.#sent = new Counter({ name: 'grpc_server_msg_sent_total', help: 'Total number of gRPC stream messages sent by the server.', labelNames: ['grpc_service', 'grpc_method', 'grpc_type'], registers });
    for (const rpc of rpcs) {
      const l = labels(rpc);
      this.#started.inc(l, 0);
      this.#received.inc(l, 0);
      this.#sent.inc(l, 0);
      this.#handling.zero(l);
      for (const grpc_code of GRPC_CODE_LABELS) this.#handled.inc({ ...l, grpc_code }, 0);
    }
  }

  #of(rpc: Rpc): RpcSeries {
    let x = this.#series.get(rpc);
    if (!x) {
      const l = labels(rpc);
      x = { started: this.#started.labels(l), received: this.#received.labels(l), sent: this.#sent.labels(l), handling: this.#handling.labels(l), handled: new Map() };
      this.#series.set(rpc, x);
    }
    return x;
  }

  started(rpc: Rpc): void {
    this.#of(rpc).started.inc();
  }

  received(rpc: Rpc): void {
    this.#of(rpc).received.inc();
  }

  sent(rpc: Rpc): void {
    this.#of(rpc).sent.inc();
  }

  /** The call ended with `codeName` (`OK`, `UNAVAILABLE` or `Unavailable`, …) after `seconds`. */
  handled(rpc: Rpc, codeName: string, seconds: number): void {
    const x = this.#of(rpc);
    const grpc_code = grpcCodeLabelOf(codeName);
    let h = x.handled.get(grpc_code);
    if (!h) {
      h = this.#handled.labels({ ...labels(rpc), grpc_code });
      x.handled.set(grpc_code, h);
    }
    h.inc();
    x.handling.observe(seconds);
  }
}

function labels(rpc: Rpc): Record<RpcLabel, string> {
  return { grpc_service: rpc.service, grpc_method: rpc.method, grpc_type: rpc.type };
}
