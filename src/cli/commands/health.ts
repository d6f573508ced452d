/**
 * `linkgw health`: ask the gateway's ops listener (LINKGW_METRICS_LISTEN, a wildcard host dialled on loopback)
 * whether it is up (/healthz) or ready (/readyz, --ready); exit 0 or 1. The container image's HEALTHCHECK runs
 * it, so the check follows the same settings as the gateway.
 */
import { settingsFromEnv } from '../../config/settings.js';
import { dialAddress } from '../client-target.js';
import { CliError, command, type CommandGroup } from '../command.js';

const health = command({
  summary: 'check that the gateway on this host is up (/healthz) or, with --ready, ready to serve (/readyz); exit 0 or 1',
  args: { min: 0, max: 0 },
  options: {
    ready: { type: 'boolean', doc: 'ask /readyz (serving, not draining, record store not stalled) instead of /healthz' },
    address: { type: 'string', value: 'HOST:PORT', doc: 'the ops listener (default: $LINKGW_METRICS_LISTEN)' },
  },
  run: async (inv) => {
    const address = inv.options.address ?? dialAddress(settingsFromEnv().metricsListen);
    const url = `http://${address}/${inv.options.ready ? 'readyz' : 'healthz'}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    } catch (e) {
      throw new CliError(`${url}: ${(e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).message}`);
    }
    await res.body?.cancel();
    if (!res.ok) throw new CliError(`${url}: ${res.status} ${res.statusText}`);
    process.stdout.write(`${url}: ${res.status} ${res.statusText}\n`);
  },
});

export const healthGroup: CommandGroup = { name: 'health', summary: health.summary, commands: { '': health } };
