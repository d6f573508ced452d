/**
 * The command line's conventions, as a newcomer meets them: every command has --help; an unknown flag, a wrong
 * argument or an unknown command exits 2 with a short usage; a configuration mistake exits 78 naming its cause;
 * a client talks to any gateway with --address/--cert/--key/--ca and names gRPC statuses.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runGroup, UsageError } from '../../src/cli/command.js';
import { dialAddress } from '../../src/cli/client-target.js';
import { GROUPS } from '../../src/cli/commands/index.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { tempDir } from '../helpers/gateway-harness.js';
import { killServed, serve } from '../helpers/serve-process.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
afterAll(killServed);

function linkgw(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Only this test's LINKGW_* settings: the child must not see the runner's.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LINKGW_')));
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, LINKGW_DATA_DIR: tempDir(), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** Runs a command line in this process, capturing what it prints; resolves with the status runGroup returns. */
async function inProcess(argv: string[]): Promise<{ status: number; stdout: string }> {
  const group = GROUPS.find((g) => g.name === argv[0])!;
  let stdout = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  try {
    return { status: await runGroup(group, argv.slice(1)), stdout };
  } finally {
    spy.mockRestore();
  }
}

/** Every command line there is: [group, ...scope, name]. */
const COMMANDS = GROUPS.flatMap((g) => Object.keys(g.commands).map((n) => [g.name, ...(g.scope ?? []).map(() => 'pension'), n].filter(Boolean)));

describe('linkgw conventions', () => {
  it('gives every command --help (exit 0, its usage and options)', async () => {
    // In this process (a child per command costs a second each on a loaded machine); main.ts maps the result
    // to the exit status, checked through child processes below.
    expect(COMMANDS.length).toBeGreaterThan(8);
    for (const c of COMMANDS) {
      const r = await inProcess([...c, '--help']);
      expect(r.status, c.join(' ')).toBe(0);
      expect(r.stdout, c.join(' ')).toMatch(new RegExp(`^usage: linkgw ${c[0]}( AGENCY)?${c.length > 1 ? ` ${c.at(-1)}` : ''} \\[options\\]`));
      expect(r.stdout).toContain('-h, --help');
    }
    for (const g of ['keys', 'client', 'records']) {
      const r = await inProcess([g, '--help']);
      expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/^usage: linkgw .*COMMAND[\s\S]*commands:/)]);
    }
    const issue = await linkgw(['client', 'issue', '--help']);
    expect([issue.status, issue.stdout]).toEqual([0, expect.stringMatching(/^usage: linkgw client AGENCY issue \[options\] NUMBER\|-\n/)]);
    const top = await linkgw(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/Exit status: 0 ok, 1 failure, 2 usage, 78 configuration error/);
    expect(top.stdout).toMatch(/LINKGW_REDIS_KEY_PREFIX/);
    expect((await linkgw(['help', 'keys'])).stdout).toMatch(/^usage: linkgw keys COMMAND/);
    expect((await linkgw(['--version'])).stdout).toBe(`${(JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });

  it('refuses an unknown flag with the usage of the command, for every command (exit 2)', async () => {
    for (const c of COMMANDS) {
      const e = await inProcess([...c, '--no-such-flag']).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, c.join(' ')).toBeInstanceOf(UsageError);
      expect((e as UsageError).message).toBe("unknown option '--no-such-flag'");
      expect((e as UsageError).usage).toMatch(new RegExp(`^linkgw ${c[0]}.* \\[options\\]`));
    }
    const r = await linkgw(['records', 'verify', '--no-such-flag']);
    expect([r.status, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe("linkgw: unknown option '--no-such-flag'\nusage: linkgw records verify [options]\nsee: linkgw records verify --help\n");
  });

  it('exits 2 on wrong arguments and unknown commands, naming the mistake', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"; one of serve, simulate, health, keys, pki, records, migrate, witness, portal, client/],
      [['keys'], /a command is missing; one of show, rotate, rotate-seal/],
      [['keys', 'spin'], /unknown command "spin"/],
      [['keys', 'show', 'extra'], /0 arguments expected, 1 given/],
      [['client'], /AGENCY is missing/],
      [['client', 'issue', '621498320257'], /AGENCY is missing before "issue"/],
      [['client', 'pension', 'query', 'CODE'], /4 arguments expected, 1 given/],
      [['client', 'Pension!', 'issue', '1'], /AGENCY: "Pension!" is not an agency id/],
      [['client', 'disclosure', 'records', 'C', '--page-size', '5000'], /--page-size: a whole number from 1 to 1000, not "5000"/],
      [['client', 'pension', 'report-wrong-binding', 'C', '--since', 'yesterday'], /--since: an ISO 8601 time/],
      [['client', 'pension', 'issue', '1', '--address', 'gateway'], /--address: host:port is required/],
      [['serve', '--port', '1'], /unknown option '--port'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => linkgw(args)));
    for (const [i, [args, msg]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr).toMatch(/\nusage: linkgw/);
    }
  });

  it('exits 78 on a configuration mistake, naming the variable or the file and position', async () => {
    let r = await linkgw(['keys', 'show'], { LINKGW_RECORD_URL: 'postgres://db/x' });
    expect([r.status, r.stderr]).toEqual([78, 'linkgw: invalid configuration:\n  LINKGW_RECORD_URL: not a setting of linkgw; did you mean LINKGW_RECORDS_URL?\n']);
    r = await linkgw(['serve'], { LINKGW_LISTEN: '0.0.0.0', LINKGW_ENGINE: 'fast' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/LINKGW_LISTEN="0\.0\.0\.0": host:port is required/);
    expect(r.stderr).toMatch(/LINKGW_ENGINE="fast": one of auto, inline, pool/);
    const dir = tempDir();
    const agencies = join(dir, 'agencies.json');
    writeFileSync(agencies, '{\n  "agencies": [\n    { "id": "tax" "name": "x" }\n  ]\n}\n');
    r = await linkgw(['serve'], { LINKGW_AGENCIES: agencies, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/agencies\.json:3:19: not valid JSON: Expected ',' or '}' after property value/);
  });

  it('talks to a gateway with --address, --cert, --key and --ca, and names gRPC statuses', async () => {
    const dataDir = tempDir();
    const gw = await serve({ LINKGW_DATA_DIR: dataDir });
    // The files somewhere else, and a data directory that has no PKI: only the flags can find them.
    const elsewhere = tempDir();
    mkdirSync(join(elsewhere, 'tls'));
    for (const f of ['ca.crt', 'welfare.crt', 'welfare.key']) copyFileSync(join(dataDir, 'pki', f), join(elsewhere, 'tls', f));
    const flags = ['--address', gw.address, '--cert', join(elsewhere, 'tls', 'welfare.crt'), '--key', join(elsewhere, 'tls', 'welfare.key'), '--ca', join(elsewhere, 'tls', 'ca.crt')];
    const human = await linkgw(['client', 'welfare', 'issue', '-', ...flags], {}, '621498320257\n');
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^code {4}[0-9A-Z]{28}\nrecord {2}[0-9A-Z]{24}\n$/);
    const json = await linkgw(['client', 'welfare', 'issue', '621498320257', '--json', ...flags]);
    expect(JSON.parse(json.stdout)).toEqual({ code: human.stdout.slice(8, 36), recordId: expect.stringMatching(/^[0-9A-Z]{24}$/) });

    const noPki = await linkgw(['client', 'welfare', 'issue', '621498320257', '--address', gw.address]);
    expect(noPki.status).toBe(1);
    expect(noPki.stderr).toMatch(/no CA certificate at .*pki\/ca\.crt: start `linkgw serve` once with this LINKGW_DATA_DIR \(it creates the dev PKI\), or pass --cert, --key and --ca/);

    // The defaults: LINKGW_LISTEN and the dev PKI of LINKGW_DATA_DIR.
    const env = { LINKGW_DATA_DIR: dataDir, LINKGW_LISTEN: gw.address };
    const bad = await linkgw(['client', 'welfare', 'issue', '621498320258'], env);
    expect([bad.status, bad.stderr]).toEqual([1, 'linkgw: the check digit of the personal number does not match (INVALID_ARGUMENT)\n']);
    const denied = await linkgw(['client', 'welfare', 'records', JSON.parse(json.stdout).code], env);
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/\(PERMISSION_DENIED\)\n$/);
  });

  it('dials a wildcard listen address on loopback', () => {
    expect(dialAddress('0.0.0.0:50051')).toBe('127.0.0.1:50051');
    expect(dialAddress('[::]:50051')).toBe('[::1]:50051');
    expect(dialAddress('gateway.example:443')).toBe('gateway.example:443');
  });
});
