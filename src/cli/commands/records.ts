/**
 * `linkgw records COMMAND`: the access record store of $LINKGW_RECORDS_URL (or SQLite in the data directory).
 * To add a command (checkpoints, purge…), add an entry to `commands` with `command({ … })`.
 */
import { join } from 'node:path';
import { settingsFromEnv } from '../../config/settings.js';
import { keyringLocation, readSealPublicKeys } from '../../keys/keyring-file.js';
import { command, EXIT, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

const verify = command({
  summary: 'check every chain of access records against its hash chain and seals; exit 1 if anything was tampered with',
  args: { min: 0, max: 0 },
  options: { json: { type: 'boolean', doc: 'JSON lines: one per chain, then the totals' } },
  run: async (inv) => {
    const s = settingsFromEnv();
    const [{ openRecordStore }, { verifyStore }] = await Promise.all([import('../../records/open-store.js'), import('../../records/verify-store.js')]);
    // Verifying needs only public keys: no passphrase or PIN.
    const sealPublicKeys = readSealPublicKeys(keyringLocation(s).path);
    const store = await openRecordStore({ url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') });
    try {
      const reports = await verifyStore(store, sealPublicKeys);
      const bad = reports.filter((r) => r.problem).length;
      const totals = { chains: reports.length, records: reports.reduce((n, r) => n + r.records, 0), tampered: bad };
      const p = new Printer(inv.options.json);
      if (inv.options.json) {
        for (const r of reports) p.object(r);
        p.object(totals);
      } else {
        p.rows(
          reports.map((r) => ({
            chainId: r.chainId,
            records: r.records,
            seals: r.seals,
            result: r.problem ? `${r.problem.kind} at record ${r.problem.seq ?? '?'} (${r.problem.recordId ?? '-'}): ${r.problem.detail}` : 'ok',
          })),
          [
            ['chainId', 'CHAIN'],
            ['records', 'RECORDS'],
            ['seals', 'SEALS'],
            ['result', 'RESULT'],
          ],
        );
        p.write(`${totals.chains} chain${totals.chains === 1 ? '' : 's'}, ${totals.records} records, ${bad ? `${bad} tampered with` : 'none tampered with'}\n`);
      }
      return bad ? EXIT.failure : EXIT.ok;
    } finally {
      await store.close();
    }
  },
});

export const recordsGroup: CommandGroup = {
  name: 'records',
  summary: 'the access record store ($LINKGW_RECORDS_URL, else SQLite in the data directory)',
  commands: { verify },
};
