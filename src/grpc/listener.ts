/**
 * The gateway's own TCP listener and TLS handshake in front of grpc-js, for bounds grpc-js does not have
 * (docs/adr/0009-transport-guard.md, docs/adr/0014-connection-budgets.md):
 *
 *  - connections per peer address (generous: agencies may sit behind one egress proxy);
 *  - handshakes in progress are a budget of their own (`maxHandshakes`), separate from agency connections: when
 *    it is full, a new connection closes the most stalled handshake (one that has sent nothing for a second,
 *    else the oldest), never an established connection; each handshake must finish within
 *    `handshakeTimeoutMs` (Node's default holds a socket that never starts TLS for 120 s);
 *  - the handshake is done here (a `TLSSocket` over the accepted socket), so a refused one has its reason: no
 *    certificate, unknown CA, expired, revoked (LINKGW_CLIENT_CRL), ambiguous or unknown agency, timeout;
 *    counted in `linkgw_handshakes_refused_total{reason}` and logged with the peer address, limited per reason;
 *  - established connections are budgeted per agency (`ConnectionBudget`): a cap per agency, and a reserve kept
 *    for agencies within their share, so one agency, or a flood of handshakes, cannot lock the others out.
 *
 * Each accepted connection is handed to grpc-js through its public connection injector (already TLS: the
 * injector's server is grpc-js's plaintext HTTP/2 server), so sessions get grpc-js's keepalive, connection
 * age and shutdown like any other.
 */
import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { notify } from '../core/observer.js';
import type { RefusalObserver } from '../limits/refusals.js';
import type { Logger } from '../log/logger.js';
import type { CrlVerdict } from '../pki/client-crl.js';
import { ConnectionBudget } from './connection-budget.js';
import { RefusalLog, refusalOfTlsError, refusalOfVerifyError, type HandshakeObserver, type HandshakeRefusal } from './handshake-refusals.js';

export interface ListenerLimits {
  readonly handshakeTimeoutMs: number;
  /** Established agency connections at once. */
  readonly maxConnections: number;
  readonly maxConnectionsPerPeer: number;
  /** TLS handshakes in progress at once. */
  readonly maxHandshakes: number;
  readonly maxConnectionsPerAgency: number;
  /** An agency with fewer connections than this is within its share: the reserve is kept for it. */
  readonly connectionShare: number;
  /** Connections kept for agencies within their share. */
  readonly connectionReserve: number;
}

/** What the listener needs to do the handshake and tell who connected. Absent: plaintext (development). */
export interface TlsGate {
  /** The server certificate, its key and the client CA bundle (PEM). */
  readonly pem: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
  /** The agency id of a certificate common name, or undefined when no registry entry claims it. */
  agencyOf(commonName: string): string | undefined;
  /** Revocation (LINKGW_CLIENT_CRL), when configured. */
  crl?(cert: X509Certificate): CrlVerdict;
}

export interface ListenerEnv {
  readonly log: Logger;
  readonly observer?: RefusalObserver & Partial<HandshakeObserver>;
  readonly tls?: TlsGate;
}

export interface GuardedListener {
  readonly port: number;
  /** Connections open now (handshakes included). */
  connections(): number;
  /** TLS handshakes in progress now. */
  handshakes(): number;
  /** Established connections of one agency (all agencies without an argument). */
  agencyConnections(agency?: string): number;
  /** Stops accepting connections (those open stay, for the server's graceful shutdown). */
  stopAccepting(): Promise<void>;
  /** Closes every connection still open. */
  destroy(): void;
}

/** host:port → host and port (an IPv6 host in brackets). */
export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

/** A handshake that has read nothing for this long is stalled: it is closed first when the budget is full. */
const STALLED_MS = 1000;

interface Pending {
  readonly key: string;
  readonly raw: Socket;
  readonly peer: string;
  readonly started: number;
  readonly timer: NodeJS.Timeout;
}

/** The common name of a certificate, 'ambiguous' when it has more than one, undefined when none. */
export function commonNameOf(subject: Record<string, string | string[] | undefined> | undefined): string | 'ambiguous' | undefined {
  const cn = subject?.CN;
  if (Array.isArray(cn)) return cn.length === 1 ? cn[0] : 'ambiguous';
  return cn;
}

/** Header bounds applied to grpc-js's HTTP/2 server before anything is built from a request's metadata. */
export interface HeaderLimits {
  /** SETTINGS_MAX_HEADER_LIST_SIZE, enforced by Node's HTTP/2 on every header block. */
  readonly maxHeaderListBytes: number;
  /** Header fields per block (pseudo-headers included). */
  readonly maxHeaderPairs: number;
}

/**
 * Applies HTTP/2 header bounds to the server grpc-js will create for the injector. grpc-js has no option for
 * them; its `commonServerOptions` (grpc-js 1.14) are what it passes to `http2.createServer`. Returns false when
 * that field is not there (then the defaults of Node stay: 64 KiB and 128 fields).
 */
export function applyHeaderLimits(server: Server, l: HeaderLimits): boolean {
  const o = (server as unknown as { commonServerOptions?: { settings?: Record<string, unknown>; maxHeaderListPairs?: number } }).commonServerOptions;
  if (!o || typeof o !== 'object') return false;
  o.maxHeaderListPairs = l.maxHeaderPairs;
  o.settings = { ...(o.settings ?? {}), maxHeaderListSize: l.maxHeaderListBytes };
  return true;
}

export async function listenGuarded(server: Server, listen: string, limits: ListenerLimits, env: ListenerEnv): Promise<GuardedListener> {
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const observer = env.observer;
  const refusalLog = new RefusalLog(env.log);
  const perPeer = new Map<string, number>();
  const sockets = new Set<Socket>();
  /** Handshakes in progress, oldest first. */
  const pending = new Map<string, Pending>();
  const budget = new ConnectionBudget({ total: limits.maxConnections, perAgency: limits.maxConnectionsPerAgency, share: limits.connectionShare, reserve: limits.connectionReserve });
  const tlsGate = env.tls;

  const refuse = (reason: HandshakeRefusal, socket: Socket, peer: string, fields?: Record<string, unknown>) => {
    notify(observer, (o) => o.handshakeRefused?.(reason));
    if (reason === 'timeout') notify(observer, (o) => o.refused('handshake_timeout'));
    refusalLog.refused(reason, peer, fields);
    socket.destroy();
  };

  /** The most stalled handshake: one that has read nothing for STALLED_MS (oldest first), else the oldest. */
  const victim = (): Pending | undefined => {
    const now = Date.now();
    let oldest: Pending | undefined;
    for (const p of pending.values()) {
      oldest ??= p;
      if (now - p.started < STALLED_MS) break; // newer ones are younger still
      if (p.raw.bytesRead === 0) return p;
    }
    return oldest;
  };

  const admit = (tls: TLSSocket, peer: string): void => {
    const cert = tls.getPeerX509Certificate();
    if (!cert) return refuse('no_certificate', tls, peer);
    if (!tls.authorized) return refuse(refusalOfVerifyError(String(tls.authorizationError)), tls, peer, { error: String(tls.authorizationError) });
    const cn = commonNameOf(tls.getPeerCertificate().subject as unknown as Record<string, string | string[]>);
    if (cn === undefined || cn === 'ambiguous') return refuse(cn === undefined ? 'unknown_agency' : 'ambiguous_identity', tls, peer, { subject: cert.subject.replace(/\n/g, ', ') });
    const verdict = tlsGate!.crl?.(cert) ?? 'good';
    if (verdict !== 'good') return refuse(verdict === 'revoked' ? 'revoked' : 'crl_stale', tls, peer, { commonName: cn, serial: cert.serialNumber });
    const agency = tlsGate!.agencyOf(cn);
    if (agency === undefined) return refuse('unknown_agency', tls, peer, { commonName: cn });
    if (!budget.take(agency)) return refuse('agency_connections', tls, peer, { agency, held: budget.held(agency) });
    tls.once('close', () => budget.release(agency));
    injector.injectConnection(tls);
  };

  // The handshake is Node's tls.Server's, fed our accepted sockets (its documented 'connection' event), so
  // verification and its outcome (`authorized`, `authorizationError`) are Node's public API.
  const tlsServer = tlsGate
    ? createTlsServer({ ...tlsGate.pem, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['h2'], handshakeTimeout: 0 })
    : undefined;
  const keyOf = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;
  tlsServer?.on('secureConnection', (tls: TLSSocket) => {
    // A refused socket is destroyed without an error; an admitted one gets HTTP/2's handlers too.
    tls.on('error', () => undefined);
    const p = pending.get(keyOf(tls));
    if (!p) return void tls.destroy(); // evicted or timed out meanwhile
    pending.delete(keyOf(tls));
    clearTimeout(p.timer);
    // Closing the TLS socket (grpc-js ending a session, a guard closing a connection) must close the TCP
    // socket under it: the TLS socket does not always own it.
    tls.once('close', () => p.raw.destroy());
    try {
      admit(tls, p.peer);
    } catch (err) {
      env.log.error('connection admission failed', { err, peer: p.peer });
      tls.destroy();
    }
  });
  tlsServer?.on('tlsClientError', (err: Error, tls: TLSSocket) => {
    const p = pending.get(keyOf(tls));
    if (!p) return void tls.destroy();
    pending.delete(keyOf(tls));
    clearTimeout(p.timer);
    refuse(refusalOfTlsError(err), tls, p.peer, { error: (err as { code?: string }).code ?? err.message });
    p.raw.destroy();
  });

  const handshake = (socket: Socket, peer: string): void => {
    if (pending.size >= limits.maxHandshakes) {
      const v = victim();
      if (v) {
        pending.delete(v.key);
        clearTimeout(v.timer);
        refuse('evicted', v.raw, v.peer);
      }
    }
    const key = keyOf(socket);
    const timer = setTimeout(() => {
      if (pending.delete(key)) refuse('timeout', socket, peer);
    }, limits.handshakeTimeoutMs);
    timer.unref();
    pending.set(key, { key, raw: socket, peer, started: Date.now(), timer });
    socket.once('close', () => {
      const p = pending.get(key);
      if (p?.raw !== socket) return;
      clearTimeout(p.timer);
      pending.delete(key);
    });
    tlsServer!.emit('connection', socket);
  };

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
    });
    socket.on('error', () => undefined);
    if (tlsGate) handshake(socket, peer);
    else injector.injectConnection(socket);
  });
  // A hard bound on sockets: established connections and handshakes have budgets of their own below it.
  tcp.maxConnections = limits.maxConnections + (tlsGate ? limits.maxHandshakes : 0);
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
    handshakes: () => pending.size,
    agencyConnections: (agency) => budget.held(agency),
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
