/** Credentials from PEM files: the gateway's server side (mTLS, client certificates required) and clients. */
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { ExpectedPeer } from '../service/ports.js';

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function serverCredentials(f: TlsFiles): ServerCredentials {
  return ServerCredentials.createSsl(readFileSync(f.ca), [{ cert_chain: readFileSync(f.cert), private_key: readFileSync(f.key) }], true);
}

/** The gateway's PEM files for agency handshakes (the listener does the handshake: src/grpc/listener.ts). */
export function serverPem(f: TlsFiles): { ca: Buffer; cert: Buffer; key: Buffer } {
  return { ca: readFileSync(f.ca), cert: readFileSync(f.cert), key: readFileSync(f.key) };
}

export function channelCredentials(f: TlsFiles, peer?: ExpectedPeer): ChannelCredentials {
  return credentialsFrom({ ca: readFileSync(f.ca), key: readFileSync(f.key), cert: readFileSync(f.cert) }, peer);
}


/**
 * Client credentials from PEM contents. With `peer`, the server's certificate must also carry that common
 * name: a certificate from the same CA that is valid for the host name, but belongs to
 * another agency, is refused in the handshake.
 */
export function credentialsFrom(pem: { ca: Buffer; key: Buffer; cert: Buffer }, peer?: ExpectedPeer): ChannelCredentials {
  if (!peer) return ChannelCredentials.createSsl(pem.ca, pem.key, pem.cert);
  return ChannelCredentials.createSsl(pem.ca, pem.key, pem.cert, {
    checkServerIdentity: (host: string, cert: PeerCertificate) => {
      const e = checkServerIdentity(host, cert);
      if (e) return e;
      return cert.subject?.CN === peer.commonName ? undefined : new Error(`the server's certificate is not ${peer.commonName}'s`);
    },
  });
}
