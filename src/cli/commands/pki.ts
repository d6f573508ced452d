/**
 * `linkgw pki COMMAND`: the development PKI. Its CA key is kept in LINKGW_DEV_CA_DIR, outside the data directory
 * that a running gateway reads; this command reads it to issue a certificate for an agency added to the
 * registry after the first start. Production deployments bring their own PKI (docs/keys.md).
 */
import { join } from 'node:path';
import { loadPolicy } from '../../config/policy.js';
import { settingsFromEnv } from '../../config/settings.js';
import { issueAgencyCertificate, pkiFiles } from '../../pki/dev-pki.js';
import { command, UsageError, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

const issue = command({
  summary: 'issue a development certificate for AGENCY (its registry common name unless --common-name)',
  usage: 'AGENCY',
  args: { min: 1, max: 1 },
  options: {
    'common-name': { type: 'string', value: 'CN', doc: 'the subject common name (default: the registry\'s for AGENCY)' },
    json: { type: 'boolean', doc: 'one JSON object instead of the human format' },
  },
  run: async (inv) => {
    const s = settingsFromEnv();
    const agency = inv.args[0]!;
    const entry = loadPolicy({ agenciesFile: s.agenciesFile, legalBasisFile: s.legalBasisFile }).registry.agencies.get(agency);
    const cn = inv.options['common-name'] ?? entry?.certificateCommonName;
    if (!cn) throw new UsageError(`${agency} is not in the agency registry; give --common-name`);
    const dir = join(s.dataDir, 'pki');
    const files = await issueAgencyCertificate(dir, s.devCaDir, agency, cn);
    const f = pkiFiles(dir);
    if (inv.options.json) new Printer(true).object({ agency, commonName: cn, ...files });
    else process.stdout.write(`issued ${f.agencyCert(agency)} and ${f.agencyKey(agency)} (CN=${cn})\n`);
  },
});

export const pkiGroup: CommandGroup = {
  name: 'pki',
  summary: 'the development PKI (its CA key lives outside the data directory)',
  commands: { issue },
};
