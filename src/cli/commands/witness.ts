/**
 * `linkgw witness`: a C2SP tlog-witness for the gateways' logs, a process of its own (its key and state in
 * LINKGW_WITNESS_DIR, the logs of LINKGW_WITNESS_LOGS, HTTP on LINKGW_WITNESS_LISTEN). It cosigns a checkpoint only
 * if it is consistent with the last one it cosigned of that log, so a fork or a rollback is refused.
 */
import { witnessSettingsFromEnv } from '../../config/settings.js';
import { command, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

const witness = command({
  summary: 'run a witness that cosigns the logs\' checkpoints (C2SP tlog-witness); SIGTERM stops it',
  args: { min: 0, max: 0 },
  options: {},
  details: 'It prints one JSON line: its URL, its verifier key, and the entry for the gateways\' LINKGW_WITNESSES.',
  run: async () => {
    const s = witnessSettingsFromEnv();
    const [{ startWitness }, { createLogger }] = await Promise.all([import('../../witness/witness-command.js'), import('../../log/logger.js')]);
    const log = createLogger({ level: s.logLevel, base: { service: 'linkgw-witness' } });
    const w = await startWitness(s, log);
    new Printer(true).object({ url: w.url, verifierKey: w.verifierKey, gatewayEntry: w.gatewayEntry });
    const stop = () => void w.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
});

export const witnessGroup: CommandGroup = { name: 'witness', summary: witness.summary, commands: { '': witness } };
