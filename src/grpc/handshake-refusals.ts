/**
 * Why the gateway refused a connection at or right after its TLS handshake: the closed set exported as
 * `linkgw_handshakes_refused_total{reason}` (a bounded label, as Envoy's `ssl.fail_verify_*` counters), and a
 * log of them limited per reason, so a flood of refused handshakes costs a few lines, not one per connection.
 */
import type { Logger } from '../log/logger.js';

export const HANDSHAKE_REFUSALS = [
  /** The client sent no certificate. */
  'no_certificate',
  /** Its certificate does not chain to the client CA bundle (another CA, a self-signed one). */
  'unknown_ca',
  /** Its certificate (or one of its chain) has expired, or is not valid yet. */
  'expired',
  /** Its certificate is listed in a CRL of LINKGW_CLIENT_CRL . */
  'revoked',
  /** Its CA's CRL is past its nextUpdate and LINKGW_CLIENT_CRL_STALE=closed. */
  'crl_stale',
  /** A valid certificate whose common name no registry entry claims. */
  'unknown_agency',
  /** A certificate with more than one common name: which agency it is would depend on who reads it. */
  'ambiguous_identity',
  /** The agency already holds its share of the connections (LINKGW_MAX_CONNECTIONS_PER_AGENCY, the reserve). */
  'agency_connections',
  /** The handshake did not finish within LINKGW_TLS_HANDSHAKE_TIMEOUT_MS. */
  'timeout',
  /** Closed to make room while LINKGW_MAX_HANDSHAKES handshakes were in progress (the most stalled first). */
  'evicted',
  /** Any other TLS failure (a protocol error, no shared cipher, not TLS at all). */
  'tls_error',
] as const;

export type HandshakeRefusal = (typeof HANDSHAKE_REFUSALS)[number];

export interface HandshakeObserver {
  handshakeRefused(reason: HandshakeRefusal): void;
}

/** The reason for OpenSSL's verification error code (Node's `authorizationError`), or tls_error. */
export function refusalOfVerifyError(code: string | undefined): HandshakeRefusal {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'expired';
    case 'CERT_REVOKED':
      return 'revoked';
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
    case 'CERT_UNTRUSTED':
    case 'INVALID_CA':
      return 'unknown_ca';
    default:
      return 'tls_error';
  }
}

/** The reason for an error of the TLS socket before its handshake finished (OpenSSL's reason codes). */
export function refusalOfTlsError(err: { code?: unknown; message?: unknown } | undefined): HandshakeRefusal {
  const text = `${String(err?.code ?? '')} ${String(err?.message ?? '')}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return 'no_certificate';
  if (/CERTIFICATE_VERIFY_FAILED/i.test(text)) return 'unknown_ca';
  return 'tls_error';
}

/**
 * Logs refused handshakes with the peer address: the first `perWindow` of each reason in every window, then
 * one line with how many were left out. Memory is one counter per reason.
 */
export class RefusalLog {
  readonly #counts = new Map<HandshakeRefusal, { logged: number; suppressed: number }>();
  #windowStart: number;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 5,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    this.#windowStart = now();
  }

  refused(reason: HandshakeRefusal, peer: string, fields: Record<string, unknown> = {}): void {
    const t = this.now();
    if (t - this.#windowStart >= this.windowMs) this.#flush(t);
    let c = this.#counts.get(reason);
    if (!c) this.#counts.set(reason, (c = { logged: 0, suppressed: 0 }));
    if (c.logged < this.perWindow) {
      c.logged++;
      this.log.warn('connection refused at the TLS handshake', { reason, peer, ...fields });
    } else c.suppressed++;
  }

  #flush(t: number): void {
    for (const [reason, c] of this.#counts)
      if (c.suppressed > 0) this.log.warn('connections refused at the TLS handshake, not logged one by one', { reason, count: c.suppressed, seconds: Math.round((t - this.#windowStart) / 1000) });
    this.#counts.clear();
    this.#windowStart = t;
  }
}
