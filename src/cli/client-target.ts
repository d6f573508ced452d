/**
 * How `linkgw client` finds the gateway and proves which agency it is:
 *   address  --address HOST:PORT, else LINKGW_LISTEN (default 127.0.0.1:50051), the address `linkgw serve`
 *            listens on with the same environment; a wildcard host (0.0.0.0, [::]) is dialled on loopback.
 *   identity --cert FILE --key FILE: the agency's client certificate, else the dev PKI that `linkgw serve`
 *            creates in the data directory: $LINKGW_DATA_DIR/pki/AGENCY.crt and AGENCY.key.
 *   trust    --ca FILE: the CA the gateway's certificate must chain to, else $LINKGW_DATA_DIR/pki/ca.crt.
 * With LINKGW_INSECURE_PLAINTEXT=1 (development only) there is no TLS and the agency is named in metadata.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addressProblem, settingsFromEnv } from '../config/settings.js';
import { AgencyClient } from './agency-client.js';
import { CliError, UsageError, type OptionSpecs } from './command.js';

export const CLIENT_OPTIONS = {
  address: { type: 'string', value: 'HOST:PORT', doc: 'the gateway (default: $LINKGW_LISTEN, else 127.0.0.1:50051)' },
  cert: { type: 'string', value: 'FILE', doc: "the agency's client certificate (default: $LINKGW_DATA_DIR/pki/AGENCY.crt)" },
  key: { type: 'string', value: 'FILE', doc: 'its private key (default: $LINKGW_DATA_DIR/pki/AGENCY.key)' },
  ca: { type: 'string', value: 'FILE', doc: "the CA of the gateway's certificate (default: $LINKGW_DATA_DIR/pki/ca.crt)" },
} as const satisfies OptionSpecs;

export interface TargetOptions {
  readonly address?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
}

export interface Target {
  readonly address: string;
  readonly agency: string;
  readonly plaintext: boolean;
  readonly files: { ca: string; cert: string; key: string };
}

const AGENCY = /^[a-z][a-z0-9-]{0,31}$/;

/** The address to dial for one a server listens on: a wildcard host becomes loopback. */
export function dialAddress(listen: string): string {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  const port = listen.slice(i + 1);
  if (host === '0.0.0.0') return `127.0.0.1:${port}`;
  if (host === '[::]' || host === '[::0]') return `[::1]:${port}`;
  return listen;
}

export function resolveTarget(agency: string, o: TargetOptions, env: NodeJS.ProcessEnv = process.env): Target {
  if (!AGENCY.test(agency)) throw new UsageError(`AGENCY: "${agency}" is not an agency id (lower-case letters, digits and hyphens)`);
  const s = settingsFromEnv(env);
  let address: string;
  if (o.address !== undefined) {
    const p = addressProblem(o.address);
    if (p) throw new UsageError(`--address: ${p}`);
    address = o.address;
  } else {
    address = dialAddress(s.listen);
    if (address.endsWith(':0')) throw new UsageError('LINKGW_LISTEN has port 0 (a free port chosen at start): pass the address the gateway logged with --address');
  }
  const pki = join(s.dataDir, 'pki');
  const files = { ca: o.ca ?? join(pki, 'ca.crt'), cert: o.cert ?? join(pki, `${agency}.crt`), key: o.key ?? join(pki, `${agency}.key`) };
  if (!s.insecurePlaintext)
    for (const [what, f] of Object.entries(files))
      if (!existsSync(f))
        throw new CliError(
          o[what as keyof TargetOptions] !== undefined
            ? `--${what}: ${f} does not exist`
            : `no ${what === 'ca' ? 'CA certificate' : what === 'cert' ? `certificate for agency "${agency}"` : `key for agency "${agency}"`} at ${f}: ` +
                'start `linkgw serve` once with this LINKGW_DATA_DIR (it creates the dev PKI), or pass --cert, --key and --ca',
        );
  return { address, agency, plaintext: s.insecurePlaintext, files };
}

export function connect(t: Target): AgencyClient {
  return new AgencyClient({ address: t.address, agency: t.agency, plaintext: t.plaintext, ...(t.plaintext ? {} : { files: t.files }) });
}
