/** `linkgw serve`: run the gateway with the settings of the LINKGW_* environment (see `linkgw serve --help`). */
import { ENV_DOC, settingsFromEnv } from '../../config/settings.js';
import { command, type CommandGroup } from '../command.js';

/** The settings table of --help, generated from the schema. */
export function environmentHelp(): string {
  const width = Math.max(...ENV_DOC.map(([k]) => k.length));
  return ['environment (an unknown LINKGW_* variable or an invalid value stops the start, exit 78):', ...ENV_DOC.map(([k, d, w]) => `  ${k.padEnd(width)}  ${w}\n  ${''.padEnd(width)}  default: ${d}`)].join('\n');
}

/**
 * SIGTERM to exit, at most: calls in flight get most of it, then records not committed fail (nothing is
 * released) and the process exits, whatever the record store does. Kubernetes waits 30 s by default.
 */
export const SHUTDOWN_GRACE_MS = 10_000;

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
    // Signal handlers come first: a SIGTERM that arrives while the gateway starts ends a wait for the record
    // store at once, and otherwise stops the gateway once it has started.
    let stopRequested: string | undefined;
    const starting = new AbortController();
    let stop: (signal: string) => void = (signal) => {
      stopRequested ??= signal;
      starting.abort();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    let gw: Awaited<ReturnType<typeof startGateway>>;
    try {
      gw = await startGateway(s, { log, signal: starting.signal });
    } catch (e) {
      if (stopRequested === undefined) throw e;
      log.info('stopped while starting', { signal: stopRequested });
      // Nothing is serving; whatever was opened is closed. Exit even if a handle lingers.
      setTimeout(() => process.exit(0), 1000).unref();
      return;
    }
    process.on('SIGHUP', () => gw.policy.reload());
    gw.policy.watchFiles();
    let stopping = false;
    stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info('shutting down', { signal, graceMs: SHUTDOWN_GRACE_MS });
      // The gateway bounds its own stop by the grace; this is the last resort if something else hangs.
      setTimeout(() => {
        log.error('shutdown did not finish within its grace; exiting now', { graceMs: SHUTDOWN_GRACE_MS });
        process.exit(1);
      }, SHUTDOWN_GRACE_MS + 2000).unref();
      gw.stop(SHUTDOWN_GRACE_MS).then(
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
