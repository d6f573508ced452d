/** `linkgw serve`: run the gateway with the settings of the LINKGW_* environment (see `linkgw serve --help`). */
import { ENV_DOC, settingsFromEnv } from '../../config/settings.js';
import { command, type CommandGroup } from '../command.js';

/** The settings table of --help, generated from the schema. */
export function environmentHelp(): string {
  const width = Math.max(...ENV_DOC.map(([k]) => k.length));
  return ['environment (an unknown LINKGW_* variable or an invalid value stops the start, exit 78):', ...ENV_DOC.map(([k, d, w]) => `  ${k.padEnd(width)}  ${w}\n  ${''.padEnd(width)}  default: ${d}`)].join('\n');
}

const serve = command({
  summary: 'run the gateway (gRPC over mTLS, /metrics, /healthz and /readyz); SIGTERM stops it gracefully, SIGHUP reloads the policy',
  get details() {
    return environmentHelp();
  },
  args: { min: 0, max: 0 },
  options: {},
  run: async () => {
    const s = settingsFromEnv();
    // Loaded here, so that the other commands start without the whole gateway.
    const [{ startGateway }, { createLogger }] = await Promise.all([import('../../gateway.js'), import('../../log/logger.js')]);
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
    // Resolving leaves the process to its servers; the exit status comes from stop().
  },
});

export const serveGroup: CommandGroup = { name: 'serve', summary: serve.summary, commands: { '': serve } };
