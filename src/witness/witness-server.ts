/**
 * The witness's HTTP interface (C2SP tlog-witness): `POST /add-checkpoint` and `GET /<origin hash>/checkpoint`,
 * with the same URL as submission and monitoring prefix. Requests carry no authentication beyond the log's
 * signature on the checkpoint; bodies are small (a checkpoint and at most 63 proof lines), larger ones refused.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../log/logger.js';
import type { Witness } from './witness.js';

const MAX_BODY = 64 * 1024;

export interface WitnessServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startWitnessServer(witness: Witness, listen: string, log: Logger): Promise<WitnessServer> {
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const url = new URL(req.url ?? '/', 'http://witness');
    const monitor = /^\/([0-9a-f]{64})\/checkpoint$/.exec(url.pathname);
    if (req.method === 'GET' && monitor) {
      const c = witness.latestCosigned(monitor[1]!);
      return c ? reply(200, c) : reply(404, 'never cosigned a checkpoint of that log\n');
    }
    if (url.pathname !== '/add-checkpoint') return reply(404, 'not found\n');
    if (req.method !== 'POST') return reply(405, 'POST only\n');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reply(413, 'request too large\n');
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return;
      witness.addCheckpoint(Buffer.concat(chunks)).then(
        (a) => reply(a.status, a.body, a.contentType),
        (err: unknown) => {
          log.error('witness: add-checkpoint failed', { err });
          reply(500, 'internal error\n');
        },
      );
    });
  });
  const i = listen.lastIndexOf(':');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(listen.slice(i + 1)), listen.slice(0, i).replace(/^\[|\]$/g, ''), () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const host = listen.slice(0, i);
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
