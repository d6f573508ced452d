/**
 * The command-line conventions, in one place: each subcommand declares its arguments, options and summary;
 * this parses them with `node:util` parseArgs in strict mode (an unknown flag or a wrong number of arguments
 * is a usage error: exit 2 with a short usage), gives every command `--help`, and turns failures into exit
 * statuses.
 *
 * Exit statuses: 0 ok; 1 the command failed (a gRPC error, a tampered record, a bulk row that failed);
 * 2 usage (unknown command or flag, wrong arguments); 78 configuration (an invalid LINKGW_* variable or policy
 * file: EX_CONFIG of sysexits.h, so a service manager can tell it from a crash and stop restarting).
 *
 * Why parseArgs and not commander: it ships with Node (no dependency), and strict mode already refuses
 * unknown flags; what commander adds (help text, subcommand trees) is a few lines here, and commander's
 * trees do not fit `linkgw client AGENCY COMMAND`, where a positional comes before the subcommand.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Placeholder of the value in help (`N`, `FILE`). */
  readonly value?: string;
  readonly doc: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;
export type OptionValues<O extends OptionSpecs> = { readonly [K in keyof O]: O[K]['type'] extends 'boolean' ? boolean : string | undefined };

export interface Invocation<O extends OptionSpecs> {
  readonly args: readonly string[];
  readonly options: OptionValues<O>;
  /** Positionals before the subcommand (client: the AGENCY). */
  readonly scope: readonly string[];
}

export interface Command<O extends OptionSpecs = OptionSpecs> {
  readonly summary: string;
  /** The arguments after the command name, as usage shows them (`CODE PROVIDER PROCEDURE ITEM`). */
  readonly usage?: string;
  readonly args: { readonly min: number; readonly max: number };
  readonly options: O;
  /** Longer text for --help. */
  readonly details?: string;
  /** Resolves with the exit status (default 0). */
  run(inv: Invocation<O>): Promise<number | void>;
}

/** Declares a command, keeping its option types. */
export function command<const O extends OptionSpecs>(c: Command<O>): Command<O> {
  return c;
}

export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  /** Positionals before the subcommand, as usage shows them (`AGENCY`). */
  readonly scope?: readonly string[];
  /** Options every command of the group takes (client: --address, --cert…). */
  readonly options?: OptionSpecs;
  /** Subcommands by name; a group run as one command (`serve`) has a single command named ''. */
  readonly commands: Readonly<Record<string, Command<any>>>;
  /** Shown under the group's help. */
  readonly details?: string;
}

/** A mistake on the command line: exit 2 with the usage line and where to read more. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly usage?: string,
    readonly help?: string,
  ) {
    super(message);
  }
}

/** A failure the user should see as one line (exit 1 unless `exitCode` says otherwise). */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', doc: 'this help' };

function commandLine(group: CommandGroup, name: string): string {
  return ['linkgw', group.name, ...(group.scope ?? []), name].filter(Boolean).join(' ');
}

function optionsOf(group: CommandGroup, c: Command<any>): OptionSpecs {
  return { ...group.options, ...c.options, help: HELP_OPTION };
}

function formatOptions(options: OptionSpecs): string {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`, o.doc] as const);
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`).join('\n');
}

export function usageLine(group: CommandGroup, name: string): string {
  const c = group.commands[name]!;
  return `${commandLine(group, name)} [options]${c.usage ? ` ${c.usage}` : ''}`;
}

export function commandHelp(group: CommandGroup, name: string): string {
  const c = group.commands[name]!;
  return [`usage: ${usageLine(group, name)}`, '', c.summary + (c.details ? `\n\n${c.details}` : ''), '', 'options:', formatOptions(optionsOf(group, c)), ''].join('\n');
}

export function groupHelp(group: CommandGroup): string {
  const names = Object.keys(group.commands);
  if (names.length === 1 && names[0] === '') return commandHelp(group, '');
  // A default command ('') shows as the group run without a command name.
  const shown = (n: string) => n || '(none)';
  const width = Math.max(...names.map((n) => shown(n).length));
  return [
    `usage: ${commandLine(group, 'COMMAND')} [options] …`,
    '',
    group.summary,
    '',
    'commands:',
    ...names.map((n) => `  ${shown(n).padEnd(width)}  ${group.commands[n]!.summary}`),
    ...(group.details ? ['', group.details] : []),
    '',
    `Each command has --help: ${commandLine(group, names.find(Boolean) ?? '')} --help`,
    '',
  ].join('\n');
}

/** Parses `argv` (after the group name) and runs the command it names; resolves with the exit status. */
export async function runGroup(group: CommandGroup, argv: readonly string[]): Promise<number> {
  const at: { name?: string } = {};
  try {
    return await parseAndRun(group, argv, at);
  } catch (e) {
    // Usage errors from inside a command (a bad option value) get the command's usage line and help hint.
    if (e instanceof UsageError && (e.usage === undefined || e.help === undefined))
      throw new UsageError(e.message, e.usage ?? (at.name !== undefined ? usageLine(group, at.name) : undefined), helpHint(group, at.name));
    throw e;
  }
}

function helpHint(group: CommandGroup, name: string | undefined): string {
  return ['linkgw', group.name, name, '--help'].filter(Boolean).join(' ');
}

/** Parses and runs; `at.name` is the command once it is known (for the usage of errors raised later). */
async function parseAndRun(group: CommandGroup, argv: readonly string[], at: { name?: string }): Promise<number> {
  const scopeCount = group.scope?.length ?? 0;
  const single = Object.keys(group.commands).length === 1 && group.commands[''] !== undefined;
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  // `linkgw client --help`, `linkgw client issue --help`, `linkgw client pension issue --help`.
  const positionals = argv.filter((a) => !a.startsWith('-'));
  if (wantsHelp && !single) {
    const named = positionals.slice(0, scopeCount + 1).find((p) => group.commands[p] !== undefined);
    // A group with a default command: its help, then the group's other commands.
    const others = Object.keys(group.commands).filter(Boolean);
    const byDefault = group.commands[''] !== undefined ? `${commandHelp(group, '')}other commands:\n${others.map((n) => `  ${commandLine(group, n)}  ${group.commands[n]!.summary}`).join('\n')}\n` : undefined;
    process.stdout.write(named !== undefined ? commandHelp(group, named) : (byDefault ?? groupHelp(group)));
    return EXIT.ok;
  }
  let name = '';
  let rest = argv;
  const scope: string[] = [];
  if (!single) {
    // The scope positionals and the command name come first, before any option.
    for (let i = 0; i < scopeCount; i++) {
      const v = rest[0];
      if (v === undefined || v.startsWith('-')) throw new UsageError(`${group.scope![i]} is missing`, `${commandLine(group, 'COMMAND')} …`);
      if (group.commands[v] !== undefined) throw new UsageError(`${group.scope![i]} is missing before "${v}"`, usageLine(group, v));
      scope.push(v);
      rest = rest.slice(1);
    }
    const n = rest[0];
    // A group with a default command ('') next to named ones (`linkgw portal`, `linkgw portal enroll`).
    if (scopeCount === 0 && group.commands[''] !== undefined && (n === undefined || group.commands[n] === undefined)) {
      name = '';
    } else {
      if (n === undefined || n.startsWith('-')) throw new UsageError(`a command is missing; one of ${Object.keys(group.commands).join(', ')}`, `${commandLine(group, 'COMMAND')} …`);
      if (group.commands[n] === undefined) throw new UsageError(`unknown command "${n}"; one of ${Object.keys(group.commands).join(', ')}`, `${commandLine(group, 'COMMAND')} …`);
      name = n;
      rest = rest.slice(1);
    }
  }
  const c = group.commands[name]!;
  at.name = name;
  if (wantsHelp) {
    process.stdout.write(commandHelp(group, name));
    return EXIT.ok;
  }
  const specs = optionsOf(group, c);
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...rest],
      options: Object.fromEntries(Object.entries(specs).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}) }])),
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, '').replace(/^Unknown option/, 'unknown option'), usageLine(group, name));
  }
  const n = parsed.positionals.length;
  if (n < c.args.min || n > c.args.max) {
    const want = c.args.min === c.args.max ? `${c.args.min}` : c.args.max === Infinity ? `at least ${c.args.min}` : `${c.args.min} to ${c.args.max}`;
    throw new UsageError(`${want} argument${want === '1' ? '' : 's'} expected, ${n} given`, usageLine(group, name));
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, o] of Object.entries(specs)) values[k] = parsed.values[k] ?? (o.type === 'boolean' ? false : undefined);
  return (await c.run({ args: parsed.positionals, options: values as OptionValues<OptionSpecs>, scope })) ?? EXIT.ok;
}

/** A string option as a whole number within bounds, or a usage error naming the option. */
export function intOption(value: string | undefined, name: string, o: { min?: number; max?: number; usage?: string } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const min = o.min ?? 0;
  if (!/^\d+$/.test(value) || n < min || (o.max !== undefined && n > o.max))
    throw new UsageError(`--${name}: a whole number${o.max !== undefined ? ` from ${min} to ${o.max}` : ` of at least ${min}`}, not "${value}"`, o.usage);
  return n;
}
