/**
 * Channel and server options for long-lived agency connections: keepalive pings so dead peers are found within
 * about 30 s and idle NAT paths stay open, and bounded message sizes so an oversize message is refused
 * (RESOURCE_EXHAUSTED) before it is buffered.
 */
import type { ChannelOptions } from '@grpc/grpc-js';

export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export const SERVER_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  // Connections are closed gracefully (GOAWAY) after 30 minutes, so clients spread over replicas again and
  // pick up rotated certificates; calls in progress get 10 more minutes (a long bulk stream included).
  'grpc.max_connection_age_ms': 30 * 60_000,
  'grpc.max_connection_age_grace_ms': 10 * 60_000,
};

export const CLIENT_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
};

/**
 * Provider channels: a provider that comes back is found within about 2.4 s (the 2 s cap plus grpc-js's 20 %
 * jitter). grpc-js's default reconnect backoff starts at 1 s and grows ×1.6 to 120 s, so a provider restarted
 * after a 30 s outage stayed unreachable for 0.9–20 s more (calls fail at once meanwhile); with these two
 * options it was reachable again in 0.6–2.2 s (grpc-js 1.14.7, 5 and 8 runs). A reconnect
 * attempt every 2 s per provider address is one TCP SYN to a refused port. Calls still fail fast (UNAVAILABLE)
 * while the provider is down: no waitForReady, so a query does not hold its slot until the provider timeout.
 */
export const PROVIDER_CLIENT_OPTIONS: ChannelOptions = {
  ...CLIENT_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2000,
};

/**
 * Client options for one target. For a loopback IP literal the TLS name checked is "localhost" (the dev PKI
 * names it, and Node deprecates IP addresses as TLS server names); any other target is checked as given.
 */
export function clientOptionsFor(address: string, base: ChannelOptions = CLIENT_OPTIONS): ChannelOptions {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const loopback = /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
  return loopback ? { ...base, 'grpc.ssl_target_name_override': 'localhost' } : base;
}
