/** Credentials from PEM files: the gateway's server side (mTLS, client certificates required) and clients. */
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function serverCredentials(f: TlsFiles): ServerCredentials {
  return ServerCredentials.createSsl(readFileSync(f.ca), [{ cert_chain: readFileSync(f.cert), private_key: readFileSync(f.key) }], true);
}

export function channelCredentials(f: TlsFiles): ChannelCredentials {
  return ChannelCredentials.createSsl(readFileSync(f.ca), readFileSync(f.key), readFileSync(f.cert));
}
