/**
 * `linkgw`: the gateway's command line.
 *
 *   linkgw serve                      run the gateway (settings from LINKGW_* environment variables)
 *   linkgw simulate                   run the simulated providing agencies on their registry addresses
 *   linkgw keys show|rotate|rotate-seal
 *   linkgw records verify             check every chain of access records against its seals
 *   linkgw client AGENCY …            act as an agency (issue, issue-bulk, query, records)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ENV_DOC, settingsFromEnv } from '../config/settings.js';
import { loadPolicy } from '../config/policy.js';
import { startGateway } from '../gateway.js';
import { rotateCodeKey, rotateSealKey } from '../keys/keyring-admin.js';
import { describeKeyring, keyringLocation, readSealPublicKeys } from '../keys/keyring-file.js';
import { createLogger } from '../log/logger.js';
import { pkiFiles } from '../pki/dev-pki.js';
import { startSimulatedProviders } from '../providers/simulated-provider.js';
import { openRecordStore } from '../records/open-store.js';
import { verifyStore } from '../records/verify-store.js';
import { AgencyClient } from './agency-client.js';
import { Outcome } from '../gen/linkage/v1/records_pb.js';
import { Direction } from '../gen/linkage/v1/gateway_pb.js';
import { statusName } from '../grpc/status.js';

const HELP = `linkgw — the linkage gateway

Usage:
  linkgw serve                         run the gateway
  linkgw simulate                      run the simulated providing agencies on their registry addresses
  linkgw keys show                     key versions and sealing public keys (no secrets)
  linkgw keys rotate                   add a code key version and issue new codes under it
  linkgw keys rotate-seal              add a record sealing key
  linkgw records verify                check all access records against their hash chains and seals
  linkgw client AGENCY issue NUMBER|-  issue AGENCY's code for a personal number (- reads it from standard input,
                                      keeping it out of the process list and shell history)
  linkgw client AGENCY issue-bulk      issue codes for numbers read from standard input, one a line
  linkgw client AGENCY report-wrong-binding CODE [--since ISO-TIME]
                                      report that AGENCY bound this code to the wrong local record; lists the
                                      exchanges since then that sent or received data about the person
  linkgw client AGENCY query CODE PROVIDER PROCEDURE ITEM
                                       ask PROVIDER for ITEM about the person AGENCY knows as CODE
  linkgw client AGENCY records CODE [--page-size N] [--page-token T]
                                       read the access records of a person (the disclosure agency only)
  linkgw help                          this text

The client uses the agency's certificate from the dev PKI in $LINKGW_DATA_DIR/pki and calls $LINKGW_LISTEN.

Environment:
${ENV_DOC.map(([k, d, w]) => `  ${k.padEnd(30)} ${w}\n  ${''.padEnd(30)} default: ${d}`).join('\n')}
`;

function fail(msg: string, code = 2): never {
  process.stderr.write(`linkgw: ${msg}\n`);
  process.exit(code);
}

function out(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : x)) + '\n');
}

async function serve(): Promise<void> {
  const s = settingsFromEnv();
  const log = createLogger({ level: s.logLevel, base: { service: 'linkgw' } });
  // Signal handlers come first: a SIGTERM that arrives while the gateway starts stops it once it has started.
  let stopRequested: string | undefined;
  let stop: (signal: string) => void = (signal) => {
    stopRequested ??= signal;
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  const gw = await startGateway(s, { log });
  process.on('SIGHUP', () => gw.policy.reload());
  gw.policy.watchFiles();
  let stopping = false;
  stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    gw.stop(10_000).then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  if (stopRequested) stop(stopRequested);
}

async function simulate(): Promise<void> {
  const s = settingsFromEnv();
  const log = createLogger({ level: s.logLevel, base: { service: 'linkgw-simulate' } });
  const { registry } = loadPolicy({ agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile });
  const f = pkiFiles(join(s.dataDir, 'pki'));
  const agencies = [...registry.agencies.values()]
    .filter((a) => a.roles.has('provider') && a.providerAddress)
    .map((a) => ({ id: a.id, cert: f.agencyCert(a.id), key: f.agencyKey(a.id), listen: a.providerAddress! }));
  const sim = await startSimulatedProviders(agencies, { caCert: f.caCert });
  log.info('simulated providing agencies serving', { addresses: Object.fromEntries(sim.addresses) });
  const stop = () => void sim.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function keys(args: string[]): Promise<void> {
  const keyring = keyringLocation(settingsFromEnv());
  switch (args[0]) {
    case 'show':
      return out(describeKeyring(keyring.path));
    case 'rotate':
      return out({ currentCodeKeyVersion: await rotateCodeKey(keyring), note: 'restart or roll the gateways to issue under it; old codes keep working' });
    case 'rotate-seal':
      return out({ currentSealingKey: await rotateSealKey(keyring), note: 'restart or roll the gateways to seal with it' });
    default:
      fail('keys: show, rotate or rotate-seal');
  }
}

async function records(args: string[]): Promise<void> {
  if (args[0] !== 'verify') fail('records: verify');
  const s = settingsFromEnv();
  // Verifying needs only public keys: no passphrase or PIN.
  const sealPublicKeys = readSealPublicKeys(keyringLocation(s).path);
  const store = await openRecordStore({ url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') });
  try {
    const reports = await verifyStore(store, sealPublicKeys);
    let bad = 0;
    for (const r of reports) {
      out(r);
      if (r.problem) bad++;
    }
    out({ chains: reports.length, records: reports.reduce((n, r) => n + r.records, 0), tampered: bad });
    if (bad) process.exitCode = 1;
  } finally {
    await store.close();
  }
}

async function firstLine(): Promise<string | undefined> {
  for await (const line of createInterface({ input: process.stdin })) if (line.trim()) return line.trim();
  return undefined;
}

async function client(args: string[]): Promise<void> {
  const [agency, cmd, ...rest] = args;
  if (!agency || !cmd) fail('client AGENCY COMMAND …; see linkgw help');
  const s = settingsFromEnv();
  const c = new AgencyClient({ address: s.listen, agency, pkiDir: join(s.dataDir, 'pki'), plaintext: s.insecurePlaintext });
  try {
    switch (cmd) {
      case 'issue': {
        if (!rest[0]) fail('client AGENCY issue NUMBER|-');
        // `-` reads the number from standard input, so it stays out of the process list and shell history.
        const number = rest[0] === '-' ? await firstLine() : rest[0];
        if (!number) fail('client AGENCY issue -: no number on standard input');
        const r = await c.issueCode(number);
        return out({ code: r.code, recordId: r.recordId });
      }
      case 'issue-bulk': {
        const numbers: string[] = [];
        for await (const line of createInterface({ input: process.stdin })) if (line.trim()) numbers.push(line.trim());
        const results = await c.issueBulk(numbers);
        results.forEach((r, i) => out(r.status === 0 ? { index: i, code: r.code } : { index: i, status: r.status, error: r.error }));
        return;
      }
      case 'query': {
        const [code, provider, procedure, item] = rest;
        if (!code || !provider || !procedure || !item) fail('client AGENCY query CODE PROVIDER PROCEDURE ITEM');
        const r = await c.queryInformation({ code, provider, procedure, item });
        return out({ recordId: r.recordId, legalBasisRow: r.legalBasisRow, contentType: r.contentType, payload: Buffer.from(r.payload).toString('utf8') });
      }
      case 'report-wrong-binding': {
        const code = rest[0];
        if (!code) fail('client AGENCY report-wrong-binding CODE [--since ISO-TIME]');
        const at = rest.indexOf('--since');
        const since = at >= 0 ? Date.parse(rest[at + 1] ?? '') : undefined;
        if (since !== undefined && !Number.isFinite(since)) fail('--since: an ISO 8601 time');
        const r = await c.reportWrongBinding(code, since);
        out({ recordId: r.recordId, truncated: r.truncated });
        for (const x of r.affected)
          out({
            recordId: x.recordId,
            requestedAt: x.requestedAt ? new Date(Number(x.requestedAt.seconds) * 1000 + Math.floor(x.requestedAt.nanos / 1e6)).toISOString() : null,
            direction: x.direction === Direction.SENT ? 'sent' : 'received',
            requester: x.requester,
            provider: x.provider,
            procedure: x.procedure,
            item: x.item,
          });
        return;
      }
      case 'records': {
        const code = rest[0];
        if (!code) fail('client AGENCY records CODE');
        const size = rest.indexOf('--page-size');
        const token = rest.indexOf('--page-token');
        const list = await c.listRecords({
          code,
          pageSize: size >= 0 ? Number(rest[size + 1]) : 0,
          pageToken: token >= 0 ? rest[token + 1] ?? '' : '',
        });
        for (const r of list)
          out({
            recordId: r.recordId,
            requestedAt: r.requestedAt ? new Date(Number(r.requestedAt.seconds) * 1000 + Math.floor(r.requestedAt.nanos / 1e6)).toISOString() : null,
            providedAt: r.providedAt ? new Date(Number(r.providedAt.seconds) * 1000 + Math.floor(r.providedAt.nanos / 1e6)).toISOString() : null,
            requester: r.requester,
            provider: r.provider,
            procedure: r.procedure,
            item: r.item,
            legalBasisRow: r.legalBasisRow,
            outcome: Outcome[r.outcome],
            cursor: r.cursor,
          });
        return;
      }
      default:
        fail(`client: unknown command ${cmd}`);
    }
  } catch (e) {
    const err = e as { code?: number; details?: string };
    fail(`${err.details ?? String(e)} (${typeof err.code === 'number' ? statusName(err.code) : 'no gRPC status'})`, 1);
  } finally {
    c.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      return serve();
    case 'simulate':
      return simulate();
    case 'keys':
      return keys(rest);
    case 'records':
      return records(rest);
    case 'client':
      return client(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    case '--version':
      process.stdout.write(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version + '\n');
      return;
    default:
      fail(`unknown command "${cmd}"; see linkgw --help`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e), 1));
