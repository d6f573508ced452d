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
 * Client options for one target. For a loopback IP literal the TLS name checked is "localhost" (the dev PKI
 * names it, and Node deprecates IP addresses as TLS server names); any other target is checked as given.
 */
export function clientOptionsFor(address: string): ChannelOptions {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const loopback = /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1';
  return loopback ? { ...CLIENT_OPTIONS, 'grpc.ssl_target_name_override': 'localhost' } : CLIENT_OPTIONS;
}
