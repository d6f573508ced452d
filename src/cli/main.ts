/**
 * `linkgw`: the gateway's command line. This file only dispatches: each command group lives in
 * src/cli/commands/ (one file a group, one entry a subcommand), and command.ts holds the conventions
 * (parsing, --help, exit statuses 0 ok, 1 failure, 2 usage, 78 configuration).
 *
 * To add a group (witness, migrate…): write src/cli/commands/NAME.ts exporting a CommandGroup, and add it to
 * GROUPS in src/cli/commands/index.ts. To add a subcommand, add an entry to its group's `commands`.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { PolicyFileError } from '../config/policy.js';
import { SettingsError } from '../config/settings.js';
import { SchemaError } from '../records/migrations.js';
import { CliError, EXIT, runGroup, UsageError } from './command.js';
import { GROUPS } from './commands/index.js';
import { environmentHelp } from './commands/serve.js';

function help(): string {
  const lines = GROUPS.flatMap((g) => {
    const names = Object.keys(g.commands);
    if (names.length === 1 && names[0] === '') return [[`linkgw ${g.name}`, g.summary] as const];
    return names.map((n) => [`linkgw ${[g.name, ...(g.scope ?? []), n, g.commands[n]!.usage].filter(Boolean).join(' ')}`, g.commands[n]!.summary] as const);
  });
  const width = Math.max(...lines.map(([l]) => l.length));
  return [
    'linkgw — the linkage gateway',
    '',
    'usage:',
    ...lines.map(([l, s]) => `  ${l.padEnd(width)}  ${s}`),
    `  ${'linkgw help [COMMAND]'.padEnd(width)}  this text, or a command's (as COMMAND --help)`,
    '',
    'Every command has --help. Exit status: 0 ok, 1 failure, 2 usage, 78 configuration error.',
    '',
    environmentHelp(),
    '',
  ].join('\n');
}

/**
 * What failed, in one line: an Error's message (with its code when the message lacks it), or a plain object's
 * fields; never `[object Object]`.
 */
function describeFailure(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const msg = e.message || e.name;
    return typeof code === 'string' && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  if (e !== null && typeof e === 'object') {
    const o = e as { message?: unknown; code?: unknown };
    if (typeof o.message === 'string' && o.message) return typeof o.code === 'string' && !o.message.includes(o.code) ? `${o.message} (${o.code})` : o.message;
    return inspect(e, { depth: 2, breakLength: Infinity });
  }
  return String(e);
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    process.stdout.write(help());
    return EXIT.ok;
  }
  if (first === 'help') {
    const g = GROUPS.find((x) => x.name === rest[0]);
    if (rest[0] !== undefined && !g) throw new UsageError(`unknown command "${rest[0]}"`);
    return g ? runGroup(g, [...rest.slice(1), '--help']) : (process.stdout.write(help()), EXIT.ok);
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const group = GROUPS.find((g) => g.name === first);
  if (!group) throw new UsageError(`unknown command "${first}"; one of ${GROUPS.map((g) => g.name).join(', ')}`);
  return runGroup(group, rest);
}

// A reader that went away (`linkgw … | head`) ends the command as SIGPIPE would, without a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(128 + 13);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const say = (msg: string) => process.stderr.write(`linkgw: ${msg}\n`);
    if (e instanceof UsageError) {
      say(e.message);
      process.stderr.write(`usage: ${e.usage ?? 'linkgw COMMAND …'}\nsee: ${e.help ?? 'linkgw --help'}\n`);
      process.exitCode = EXIT.usage;
    } else if (e instanceof SettingsError || e instanceof PolicyFileError || e instanceof SchemaError) {
      say(e.message);
      process.exitCode = EXIT.config;
    } else if (e instanceof CliError) {
      say(e.message);
      process.exitCode = e.exitCode;
    } else {
      say(describeFailure(e));
      process.exitCode = EXIT.failure;
    }
  },
);
