/**
 * Revocation of agency certificates: `LINKGW_CLIENT_CRL` names a file of one or more PEM CRLs from the CAs of
 * the client CA bundle (`LINKGW_TLS_CA`). Each is verified against the CA that signed it when it is read; a
 * CRL that no CA of the bundle signed, or that does not parse, is refused: at start the gateway does not start,
 * on a reload the CRLs in force stay (and the failure is logged and counted).
 *
 * The check runs once per connection, after the TLS handshake (src/grpc/listener.ts): a Set lookup of the
 * certificate's serial in its issuer's CRLs. It is done here and not by OpenSSL (Node's `crl` option) so that a
 * refusal has its own reason, a stale CRL can be told apart from a revoked certificate, and what a stale CRL
 * does is a setting:
 *
 *  - `open` (the default): a CRL past its nextUpdate still revokes everything it lists; connections are not
 *    refused for its age. Reported by `linkgw_client_crl_stale` and a log line, so the alert pages someone.
 *  - `closed`: every certificate of a CA whose CRL is stale is refused (reason `crl_stale`).
 *
 * Why `open` by default: the revocations the gateway holds are enforced either way; what a stale CRL may lack is
 * a revocation made after it, and `closed` would answer that by refusing every agency of the CA, on every
 * replica (they read the same file) at the same instant, because a CRL publication job lapsed. For a national
 * linkage system that is an outage of every agency, caused by the clock, which an attacker who can delay CRL
 * delivery could trigger on purpose. ADR 0014 has the reasoning; `closed` suits a deployment whose CRL
 * delivery is automated and watched.
 *
 * Re-read when the file changes (polled with `fs.watchFile`, which follows the symlinks a Kubernetes ConfigMap or
 * Secret update swaps): connections already open are not touched; a newly revoked certificate is refused at its
 * next connection (connections are closed at their maximum age, 30 minutes; a restart closes them at once).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, webcrypto } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { notify } from '../core/observer.js';
import type { Logger } from '../log/logger.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type CrlStaleMode = 'open' | 'closed';

export interface CrlObserver {
  crlLoaded(nextUpdateSeconds: number): void;
  crlReloadFailed(): void;
}

/** The CRLs of one CA. */
interface IssuerCrl {
  readonly ca: X509Certificate;
  readonly revoked: ReadonlySet<string>;
  /** Earliest nextUpdate of its CRLs, in ms (Infinity when none says). */
  readonly nextUpdate: number;
}

export type CrlVerdict = 'good' | 'revoked' | 'stale';

/** OpenSSL writes `X509 CRL` (RFC 7468); some tools write `CRL`. */
const PEM_CRL = /-----BEGIN (?:X509 )?CRL-----[\s\S]+?-----END (?:X509 )?CRL-----/g;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A serial as a comparable key: upper-case hex without leading zeros. */
export function serialKey(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Parses and verifies a PEM bundle of CRLs against the CA certificates of `caPem`; throws naming the problem. */
export async function parseCrls(crlPem: string, caPem: string): Promise<IssuerCrl[]> {
  const blocks = crlPem.match(PEM_CRL);
  if (!blocks) throw new Error('no PEM CRL (-----BEGIN X509 CRL-----) found');
  const cas = (caPem.match(PEM_CERTIFICATE) ?? []).map((b) => ({ node: new X509Certificate(b), peculiar: new x509.X509Certificate(b) }));
  const byCa = new Map<X509Certificate, { revoked: Set<string>; nextUpdate: number }>();
  for (const [i, block] of blocks.entries()) {
    let crl: x509.X509Crl;
    try {
      crl = new x509.X509Crl(block);
    } catch (e) {
      throw new Error(`CRL ${i + 1}: does not parse (${e instanceof Error ? e.message : String(e)})`);
    }
    let issuer: X509Certificate | undefined;
    for (const ca of cas) {
      if (ca.peculiar.subject !== crl.issuer) continue;
      if (await crl.verify({ publicKey: ca.peculiar }).catch(() => false)) {
        issuer = ca.node;
        break;
      }
    }
    if (!issuer) throw new Error(`CRL ${i + 1} (issuer ${crl.issuer}): not signed by a CA of the client CA bundle`);
    const e = byCa.get(issuer) ?? { revoked: new Set<string>(), nextUpdate: Infinity };
    for (const entry of crl.entries) e.revoked.add(serialKey(entry.serialNumber));
    if (crl.nextUpdate) e.nextUpdate = Math.min(e.nextUpdate, crl.nextUpdate.getTime());
    byCa.set(issuer, e);
  }
  return [...byCa].map(([ca, e]) => ({ ca, ...e }));
}

export interface ClientCrlOptions {
  readonly file: string;
  readonly caFile: string;
  readonly stale: CrlStaleMode;
  readonly log: Logger;
  readonly observer?: CrlObserver;
  /** How often the file is polled for a change (ms). */
  readonly pollMs?: number;
  readonly now?: () => number;
}

export class ClientCrl {
  #issuers: readonly IssuerCrl[] = [];
  #staleLogged = false;
  #reloading: Promise<boolean> | undefined;
  #watching = false;
  readonly #now: () => number;

  private constructor(private readonly o: ClientCrlOptions) {
    this.#now = o.now ?? Date.now;
  }

  /** Reads and verifies the CRLs (throws if they are unusable), then watches the file. */
  static async open(o: ClientCrlOptions): Promise<ClientCrl> {
    const c = new ClientCrl(o);
    c.#install(await c.#read());
    watchFile(o.file, { interval: o.pollMs ?? 2000, persistent: false }, () => void c.reload());
    c.#watching = true;
    return c;
  }

  async #read(): Promise<IssuerCrl[]> {
    return parseCrls(readFileSync(this.o.file, 'utf8'), readFileSync(this.o.caFile, 'utf8'));
  }

  #install(issuers: IssuerCrl[]): void {
    this.#issuers = issuers;
    this.#staleLogged = false;
    const next = this.nextUpdate();
    notify(this.o.observer, (x) => x.crlLoaded(Number.isFinite(next) ? next / 1000 : 0));
    const revoked = issuers.reduce((n, i) => n + i.revoked.size, 0);
    this.o.log.info('client CRLs loaded', { file: this.o.file, cas: issuers.map((i) => i.ca.subject.replace(/\n/g, ', ')), revoked, nextUpdate: Number.isFinite(next) ? new Date(next).toISOString() : null });
    this.#warnIfStale();
  }

  /** Re-reads the file; on failure keeps the CRLs in force. Resolves to whether the new ones are in force. */
  reload(): Promise<boolean> {
    this.#reloading ??= (async () => {
      try {
        this.#install(await this.#read());
        return true;
      } catch (e) {
        notify(this.o.observer, (x) => x.crlReloadFailed());
        this.o.log.error('client CRL reload failed: the CRLs read before stay in force', { file: this.o.file, err: e });
        return false;
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  /** Earliest nextUpdate of the CRLs in force (ms; Infinity when none says). */
  nextUpdate(): number {
    return this.#issuers.reduce((m, i) => Math.min(m, i.nextUpdate), Infinity);
  }

  stale(): boolean {
    return this.#now() > this.nextUpdate();
  }

  #warnIfStale(): void {
    if (this.#staleLogged || !this.stale()) return;
    this.#staleLogged = true;
    this.o.log.error('a client CRL is past its next update: publish a new one to LINKGW_CLIENT_CRL', {
      file: this.o.file,
      nextUpdate: new Date(this.nextUpdate()).toISOString(),
      mode: this.o.stale === 'open' ? 'open: its revocations are still enforced, connections are not refused for its age' : 'closed: certificates of its CA are refused',
    });
  }

  /** The verdict for a verified client certificate. O(number of CAs with a CRL), a Set lookup each. */
  check(cert: X509Certificate): CrlVerdict {
    for (const i of this.#issuers) {
      if (!cert.checkIssued(i.ca)) continue;
      if (i.revoked.has(serialKey(cert.serialNumber))) return 'revoked';
      if (this.#now() > i.nextUpdate) {
        this.#warnIfStale();
        if (this.o.stale === 'closed') return 'stale';
      }
    }
    return 'good';
  }

  close(): void {
    if (this.#watching) unwatchFile(this.o.file);
    this.#watching = false;
  }
}
