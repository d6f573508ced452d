/** `linkgw simulate`: the simulated providing agencies on their registry addresses (with LINKGW_SIMULATE=0). */
import { join } from 'node:path';
import { loadPolicy } from '../../config/policy.js';
import { settingsFromEnv } from '../../config/settings.js';
import { pkiFiles } from '../../pki/dev-pki.js';
import { command, type CommandGroup } from '../command.js';

const simulate = command({
  summary: 'run the simulated providing agencies on their registry addresses (for a gateway with LINKGW_SIMULATE=0)',
  args: { min: 0, max: 0 },
  options: {},
  run: async () => {
    const s = settingsFromEnv();
    const [{ createLogger }, { startSimulatedProviders }] = await Promise.all([import('../../log/logger.js'), import('../../providers/simulated-provider.js')]);
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
  },
});

export const simulateGroup: CommandGroup = { name: 'simulate', summary: simulate.summary, commands: { '': simulate } };
