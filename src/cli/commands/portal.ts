/**
 * `linkgw portal`: the citizen's disclosure portal (src/portal), a process of its own acting as the disclosure
 * agency towards the gateway (found as `linkgw client` finds it: --address, $LINKGW_LISTEN, the data
 * directory's PKI, or --cert/--key/--ca). `linkgw portal enroll`: a one-time enrollment code for a person at
 * the counter (passkeys).
 */
import { readFileSync } from 'node:fs';
import { Policy } from '../../config/policy.js';
import { portalSettingsFromEnv, type Settings } from '../../config/settings.js';
import { AccessRecords } from '../../gen/linkage/v1/records_pb.js';
import { callUnary } from '../../grpc/generic-client.js';
import type { DisclosureGateway } from '../../portal/ports.js';
import type { AgencyClient } from '../agency-client.js';
import { CLIENT_OPTIONS, connect, resolveTarget, type TargetOptions } from '../client-target.js';
import { CliError, command, intOption, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

const AGENCY = 'disclosure';
const DEADLINE_MS = 10_000;

/** The portal's port over an agency client with the disclosure agency's certificate. */
export function disclosureGateway(c: AgencyClient): DisclosureGateway {
  const deadline = () => Date.now() + DEADLINE_MS;
  return {
    issueCode: async (n) => (await c.issueCode(n)).code,
    listRecords: (req) => c.listRecords(req),
    queryInformation: (req) => c.queryInformation(req),
    recordProof: (recordId) => callUnary(c.records, AccessRecords.method.getRecordProof, { recordId }, { deadline: deadline() }),
    checkpoints: async () => (await callUnary(c.records, AccessRecords.method.getCheckpoints, {}, { deadline: deadline() })).checkpoints,
    consistencyProof: async (origin, oldSize, newSize) =>
      (await callUnary(c.records, AccessRecords.method.getConsistencyProof, { origin, oldSize: BigInt(oldSize), newSize: BigInt(newSize) }, { deadline: deadline() })).hashes,
  };
}

/** Verifier keys from a file: one a line; blank lines and `#` comments skipped. */
export function readVerifierKeys(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`LINKGW_PORTAL_VERIFIER_KEYS: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (keys.length === 0) throw new CliError(`LINKGW_PORTAL_VERIFIER_KEYS: ${file} holds no verifier key`);
  return keys;
}

/**
 * Development default: the log keys of the local data directory's keyring, for this replica's log and every
 * log of the same origin prefix the gateway reports. Only the public keys are read (no passphrase or PIN).
 */
async function localVerifierKeys(s: Settings, gw: DisclosureGateway): Promise<string[]> {
  const [{ keyringLocation, readSealPublicKeys }, { logVerifierKeys }] = await Promise.all([import('../../keys/keyring-file.js'), import('../../keys/note-keys.js')]);
  let publicKeys;
  try {
    publicKeys = readSealPublicKeys(keyringLocation(s).path);
  } catch (e) {
    throw new CliError(`no LINKGW_PORTAL_VERIFIER_KEYS and no keyring to read log keys from (${(e as Error).message}): set LINKGW_PORTAL_VERIFIER_KEYS`);
  }
  const origins = new Set([s.logOrigin]);
  try {
    for (const c of await gw.checkpoints()) if (c.origin.startsWith(`${s.logOriginPrefix}/`)) origins.add(c.origin);
  } catch {
    // The gateway is not up yet: this replica's log only.
  }
  return [...origins].flatMap((o) => Object.values(logVerifierKeys(publicKeys, o)));
}

const serve = command({
  summary: "serve the citizen's disclosure portal (the disclosure agency's web application); SIGTERM stops it",
  args: { min: 0, max: 0 },
  options: {},
  details: [
    'Settings: LINKGW_PORTAL_LISTEN, LINKGW_PORTAL_TLS_CERT/_KEY, LINKGW_PORTAL_ORIGIN, LINKGW_PORTAL_VERIFIER_KEYS,',
    'LINKGW_PORTAL_DEV_SIGNIN (development only), LINKGW_PORTAL_DIR; the legal-basis table and registry of',
    'LINKGW_LEGAL_BASIS and LINKGW_AGENCIES. It prints one JSON line: its URL and the keys the browser trusts.',
  ].join('\n'),
  run: async (inv) => {
    const s = portalSettingsFromEnv();
    const client = connect(resolveTarget(AGENCY, inv.options as TargetOptions));
    const gateway = disclosureGateway(client);
    const verifierKeys = s.portal.verifierKeys ? readVerifierKeys(s.portal.verifierKeys) : await localVerifierKeys(s, gateway);
    const [{ startPortal }, { createLogger }, { passkeys }, { EnrollmentStore }] = await Promise.all([
      import('../../portal/portal-server.js'),
      import('../../log/logger.js'),
      import('../../portal/passkeys.js'),
      import('../../portal/enrollment-store.js'),
    ]);
    const log = createLogger({ level: s.logLevel, base: { service: 'linkgw-portal' } });
    // The same live policy as the gateway's: names and legal-basis texts, and the self-information rows,
    // follow the files (a change, or SIGHUP); a file that does not parse leaves the policy in force.
    const policy = new Policy({ agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile }, log);
    policy.watchFiles();
    process.on('SIGHUP', () => policy.reload());
    if (s.portal.devSignIn) log.warn('LINKGW_PORTAL_DEV_SIGNIN=1: anyone who types a personal number is signed in as that person (development only)');
    const portal = await startPortal({
      listen: s.portal.listen,
      ...(s.portal.tlsCert && s.portal.tlsKey ? { tls: { cert: s.portal.tlsCert, key: s.portal.tlsKey } } : {}),
      ...(s.portal.origin ? { publicOrigin: s.portal.origin } : {}),
      gateway,
      verifierKeys,
      policy: () => policy.current,
      devSignIn: s.portal.devSignIn,
      extensions: [passkeys(new EnrollmentStore(s.portal.dir))],
      log,
    });
    new Printer(true).object({ url: portal.url, origin: portal.origin, verifierKeys });
    const stop = () =>
      void portal.close().then(() => {
        policy.close();
        client.close();
        process.exit(0);
      });
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
});

const enroll = command({
  summary: 'issue a one-time enrollment code for a person at the counter (they register a passkey with it)',
  args: { min: 0, max: 0 },
  options: { 'valid-hours': { type: 'string', value: 'N', doc: 'how long the code may be used (default 24, at most 720)' } },
  details: [
    "The municipal window's role: after checking the person's My Number card, give them this code. With it and their",
    'personal number they register a passkey at /enroll (the number is used once, for IssueCode, and not kept). The',
    'code is kept in LINKGW_PORTAL_DIR only as a hash, and works once. It prints one JSON line: the code and its expiry.',
  ].join('\n'),
  run: async (inv) => {
    const s = portalSettingsFromEnv();
    const hours = intOption(inv.options['valid-hours'], 'valid-hours', { min: 1, max: 720 }) ?? 24;
    const { EnrollmentStore } = await import('../../portal/enrollment-store.js');
    const { code, expires } = new EnrollmentStore(s.portal.dir).issueEnrollmentCode(hours * 3600_000);
    new Printer(true).object({ enrollmentCode: code, expires: new Date(expires).toISOString() });
  },
});

export const portalGroup: CommandGroup = {
  name: 'portal',
  summary: serve.summary,
  options: CLIENT_OPTIONS,
  details: 'The gateway is found as `linkgw client disclosure` finds it (--address, --cert, --key, --ca, or the environment).',
  commands: { '': serve, enroll },
};
