/**
 * Agency identity: the agency is the one whose registry entry matches the verified client certificate
 * (grpc-js has already checked the chain against the CA). The subject common name selects the entry, and the
 * entry's fingerprint pins, if any, must match. Nothing in a request can name the caller.
 *
 * Plaintext mode (development only, behind an explicit flag) has no certificate: the caller then names itself
 * in the `x-linkgw-insecure-agency` metadata, and the server warns about it at start.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { AgencyEntry, AgencyRegistry } from '../core/agency-registry.js';
import { GatewayError } from '../core/errors.js';
import { recordedPeer, type PeerIdentity } from './peer.js';

/** What identity needs of a server call: its metadata and its TLS peer. */
export interface IdentifiableCall {
  readonly metadata: Metadata;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

export const INSECURE_AGENCY_HEADER = 'x-linkgw-insecure-agency';

/** The peer as the transport guard recorded it (once per connection), or as grpc-js tells it per call. */
function peerOf(call: IdentifiableCall): PeerIdentity | null {
  const recorded = recordedPeer(call.metadata);
  if (recorded !== undefined) return recorded;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert || !cert.subject) return null;
  return { commonName: typeof cert.subject.CN === 'string' ? cert.subject.CN : undefined, fingerprint256: String(cert.fingerprint256).toUpperCase() };
}

export function identify(call: IdentifiableCall, registry: AgencyRegistry, insecure: boolean): AgencyEntry {
  if (insecure) {
    const v = call.metadata.get(INSECURE_AGENCY_HEADER)[0];
    const entry = typeof v === 'string' ? registry.agencies.get(v) : undefined;
    if (!entry) throw new GatewayError('UNAUTHENTICATED', `plaintext mode: name a registered agency in ${INSECURE_AGENCY_HEADER}`);
    return entry;
  }
  const peer = peerOf(call);
  if (!peer) throw new GatewayError('UNAUTHENTICATED', 'a client certificate is required');
  const entry = peer.commonName !== undefined ? registry.byCommonName.get(peer.commonName) : undefined;
  if (!entry) throw new GatewayError('UNAUTHENTICATED', 'the client certificate does not belong to a registered agency');
  if (entry.certificateFingerprints.length > 0 && !entry.certificateFingerprints.includes(peer.fingerprint256))
    throw new GatewayError('UNAUTHENTICATED', 'the client certificate is not one pinned for its agency');
  return entry;
}
