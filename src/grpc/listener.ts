/**
 * The gateway's own TCP listener in front of grpc-js, for bounds grpc-js does not have (measured in
 * docs/adr/0009-transport-guard.md):
 *
 *  - the TLS handshake must finish within `handshakeTimeoutMs` (Node's default holds a socket that never
 *    starts TLS for 120 s; enough of them exhaust file descriptors and every agency gets UNAVAILABLE);
 *  - connections in total, and per peer address (generous: agencies may sit behind one egress proxy; the
 *    per-agency budgets of the call pipeline bound them further once they are identified).
 *
 * Each accepted socket is handed to grpc-js through its public connection injector, so sessions get grpc-js's
 * keepalive, connection age and shutdown like any other.
 */
import type { Server, ServerCredentials } from '@grpc/grpc-js';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { notify } from '../core/observer.js';
import type { RefusalObserver } from '../limits/refusals.js';

export interface ListenerLimits {
  readonly handshakeTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerPeer: number;
}

export interface GuardedListener {
  readonly port: number;
  /** Connections open now. */
  connections(): number;
  /** Stops accepting connections (those open stay, for the server's graceful shutdown). */
  stopAccepting(): Promise<void>;
  /** Closes every connection still open. */
  destroy(): void;
}

/** The credentials with a TLS handshake timeout (grpc-js passes its constructor options to tls.Server). */
function withHandshakeTimeout(creds: ServerCredentials, ms: number): ServerCredentials {
  const inner = creds._getConstructorOptions.bind(creds);
  // null means insecure (plaintext development mode): nothing to bound.
  creds._getConstructorOptions = () => {
    const o = inner();
    return o === null ? null : { ...o, handshakeTimeout: ms };
  };
  return creds;
}

/** host:port → host and port (an IPv6 host in brackets). */
export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export async function listenGuarded(server: Server, creds: ServerCredentials, listen: string, limits: ListenerLimits, observer?: RefusalObserver): Promise<GuardedListener> {
  const injector = server.createConnectionInjector(withHandshakeTimeout(creds, limits.handshakeTimeoutMs));
  const perPeer = new Map<string, number>();
  const sockets = new Set<Socket>();
  const tcp = createServer({ noDelay: true }, (socket) => {
    const peer = socket.remoteAddress ?? '';
    const n = perPeer.get(peer) ?? 0;
    if (n >= limits.maxConnectionsPerPeer) {
      notify(observer, (o) => o.refused('connections'));
      socket.destroy();
      return;
    }
    perPeer.set(peer, n + 1);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      const m = (perPeer.get(peer) ?? 1) - 1;
      if (m > 0) perPeer.set(peer, m);
      else perPeer.delete(peer);
      // Nothing ever written back: the peer never started a TLS handshake (or never finished its hello).
      if (socket.bytesWritten === 0) notify(observer, (o) => o.refused('handshake_timeout'));
    });
    socket.on('error', () => undefined);
    injector.injectConnection(socket);
  });
  tcp.maxConnections = limits.maxConnections;
  tcp.on('drop', () => notify(observer, (o) => o.refused('connections')));
  const { host, port } = splitListen(listen);
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host, port }, () => {
      tcp.removeListener('error', reject);
      resolve();
    });
  });
  return {
    port: (tcp.address() as AddressInfo).port,
    connections: () => sockets.size,
    // net.Server.close's callback waits for every connection to end: the server's graceful shutdown does that.
    stopAccepting: async () => {
      tcp.close();
    },
    destroy: () => {
      injector.destroy();
      for (const s of sockets) s.destroy();
    },
  };
}
