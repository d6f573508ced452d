/**
 * `linkgw_tls_certificate_expiry_seconds{certificate}`: the Unix time at which a certificate the gateway uses
 * expires, so an alert can fire weeks before agencies' handshakes start failing. `certificate` is `server`
 * (the gateway's own certificate, also its client certificate towards providers) or `ca` (the bundle agency
 * certificates are checked against; the earliest expiry of its certificates, since the first CA to expire is
 * the first to break handshakes).
 *
 * The value is what this process loaded at start, not what is on disk now: the gateway reads its TLS files
 * once, so a renewed file on disk does not help until the process restarts, and the alert must keep firing.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';

export type CertificateRole = 'server' | 'ca';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The earliest `notAfter` of the certificates in a PEM bundle, in Unix seconds. */
export function earliestExpiry(pem: string | Buffer): number {
  const blocks = String(pem).match(PEM_CERTIFICATE);
  if (!blocks) throw new Error('no PEM certificate found');
  // The leaf comes first in a server chain; its intermediates may expire earlier, and then they break it.
  return Math.min(...blocks.map((b) => Date.parse(new X509Certificate(b).validTo) / 1000));
}

export class CertificateExpiry {
  readonly #gauge: Gauge<'certificate'>;

  constructor(registry: Registry) {
    this.#gauge = new Gauge({
      name: 'linkgw_tls_certificate_expiry_seconds',
      help: 'Unix time at which a TLS certificate in use expires (server: the gateway certificate chain; ca: the earliest of the client CA bundle).',
      labelNames: ['certificate'],
      registers: [registry],
    });
  }

  observe(certificate: CertificateRole, pem: string | Buffer): void {
    this.#gauge.set({ certificate }, earliestExpiry(pem));
  }

  observeFiles(files: { readonly server: string; readonly ca: string }): void {
    for (const [role, path] of [['server', files.server], ['ca', files.ca]] as const) {
      try {
        this.observe(role, readFileSync(path));
      } catch (e) {
        throw new Error(`${path}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}
