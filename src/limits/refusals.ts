/**
 * Why the gateway refused or cut short something an agency did: the closed set of reasons that the limits report,
 * exported as `linkgw_refusals_total{reason}` (a bounded label).
 */
export type RefusalReason =
  /** The agency's rate limit (calls per second). */
  | 'rate_limit'
  /** The gateway's in-flight cap is reached. */
  | 'gateway_busy'
  /** The agency has its ceiling of calls in flight. */
  | 'agency_busy'
  /** The agency is over its guaranteed share and the rest is reserved for agencies under theirs. */
  | 'reserved_for_others'
  /** The agency has its ceiling of open streams. */
  | 'agency_streams'
  /** A stream sent no message for the idle timeout. */
  | 'stream_idle'
  /** A message larger than its method allows. */
  | 'message_too_large'
  /** A connection over the total or per-address cap. */
  | 'connections'
  /** A connection that did not finish its TLS handshake in time. */
  | 'handshake_timeout'
  /** A connection closed for resetting streams over its budget, or its agency's (HTTP/2 Rapid Reset). */
  | 'stream_resets'
  /** Health or reflection requests over their bounds. */
  | 'probe_limit'
  /** A query to a providing agency that has its budget of calls in flight (LINKGW_PROVIDER_MAX_IN_FLIGHT). */
  | 'provider_busy'
  /** A query to a providing agency whose circuit breaker is open: it stopped answering. */
  | 'provider_down';

export interface RefusalObserver {
  refused(reason: RefusalReason): void;
}
