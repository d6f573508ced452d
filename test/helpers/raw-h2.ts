/** A raw HTTP/2 client over mTLS, for tests that must misbehave where grpc-js clients would not. */
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pkiFiles } from '../../src/pki/dev-pki.js';

export function rawSession(address: string, dataDir: string, agency: string): Promise<ClientHttp2Session> {
  const f = pkiFiles(join(dataDir, 'pki'));
  const session = connect(`https://localhost:${address.slice(address.lastIndexOf(':') + 1)}`, {
    ca: readFileSync(f.caCert),
    cert: readFileSync(f.agencyCert(agency)),
    key: readFileSync(f.agencyKey(agency)),
  });
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.once('remoteSettings', () => resolve(session));
    session.once('error', reject);
  });
}

/** A gRPC length-prefixed message (flag 1: compressed). */
export function grpcFrame(body: Uint8Array, compressed = false): Buffer {
  const f = Buffer.alloc(5 + body.length);
  f[0] = compressed ? 1 : 0;
  f.writeUInt32BE(body.length, 1);
  f.set(body, 5);
  return f;
}

export function grpcRequest(session: ClientHttp2Session, path: string, extra: OutgoingHttpHeaders = {}): ClientHttp2Stream {
  const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
  req.on('error', () => undefined);
  return req;
}

/** The call's grpc-status and grpc-message, from the trailers (or trailers-only headers). */
export function grpcStatus(req: ClientHttp2Stream): Promise<{ code: number; message: string }> {
  return new Promise((resolve) => {
    const take = (h: IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) resolve({ code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => undefined);
    req.on('close', () => resolve({ code: -1, message: `stream closed (rst ${req.rstCode})` }));
  });
}
