/**
 * The operator's HTTP listener: `/metrics` (Prometheus text format), `/healthz` (the process is up) and
 * `/readyz` (serving; 503 while starting, draining, or while access records cannot be written: a commit hangs,
 * commits fail, or the log is lost; the body says which). Plain HTTP on a separate address, so probes and
 * scrapers need no agency certificate; bind it to a private interface.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsServer {
  readonly address: string;
  close(): Promise<void>;
}

/** Whether the gateway serves, and if not, why (one line for the operator). */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export async function startOpsServer(listen: string, registry: Registry, readiness: () => Readiness): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end('metrics unavailable\n'),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      let r: Readiness;
      try {
        r = readiness();
      } catch {
        r = { ready: false, reason: 'readiness could not be computed' };
      }
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ready ? 'ready\n' : `not ready: ${r.reason}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const address = typeof a === 'object' && a ? `${host.includes(':') ? `[${host}]` : host}:${a.port}` : listen;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
