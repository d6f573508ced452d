/**
 * The client certificate of a connection, parsed once per connection (a TLS session's certificate cannot
 * change: TLS 1.3 has no renegotiation and Node refuses a client-initiated one), and found again for each call
 * by the Metadata object its handler sees. getPeerCertificate() on every call cost ~20 µs of CPU (40–48 µs end
 * to end with its garbage); this costs a WeakMap lookup. The transport guard records it; identity reads it.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';

export interface PeerIdentity {
  readonly commonName: string | undefined;
  /** SHA-256 fingerprint, upper-case hex with colons (as Node prints it). */
  readonly fingerprint256: string;
}

const bySession = new WeakMap<Http2Session, PeerIdentity | null>();
const byCall = new WeakMap<Metadata, PeerIdentity | null>();

/** The verified client certificate of a connection, or null when it has none. */
export function peerOfSession(session: Http2Session | undefined): PeerIdentity | null {
  if (!session) return null;
  let p = bySession.get(session);
  if (p === undefined) {
    const sock = session.socket as TLSSocket;
    const cert = session.encrypted && sock.authorized ? sock.getPeerX509Certificate() : undefined;
    // A subject with more than one CN names no agency (which one would depend on who reads it); the listener
    // refuses such a certificate at the handshake, and this keeps it unidentified should one get this far.
    const cns = cert ? cert.subject.split('\n').filter((l) => l.startsWith('CN=') || l.includes(' + CN=')) : [];
    const single = cns.length === 1 && !cns[0]!.includes(' + ') ? cns[0]!.slice(3) : undefined;
    p = cert ? { commonName: single, fingerprint256: cert.fingerprint256.toUpperCase() } : null;
    bySession.set(session, p);
  }
  return p;
}

export function rememberPeer(metadata: Metadata, peer: PeerIdentity | null): void {
  byCall.set(metadata, peer);
}

/** The peer recorded for this call, or undefined when none was (then ask grpc-js). */
export function recordedPeer(metadata: Metadata): PeerIdentity | null | undefined {
  return byCall.get(metadata);
}
