/**
 * `linkgw records COMMAND`: the access record store of $LINKGW_RECORDS_URL (or SQLite in the data directory),
 * as one transparency log per replica (docs/transparency.md). To add a command, add an entry to `commands`.
 */
import { join } from 'node:path';
import { settingsFromEnv } from '../../config/settings.js';
import { keyringLocation, readSealPublicKeys } from '../../keys/keyring-file.js';
import { command, EXIT, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

async function openStore() {
  const s = settingsFromEnv();
  const { openRecordStore } = await import('../../records/open-store.js');
  return { s, store: await openRecordStore({ url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') }) };
}

const verify = command({
  summary: 'rebuild every log from its records and check its stored tree and signed checkpoints; exit 1 if anything was tampered with',
  args: { min: 0, max: 0 },
  options: {
    against: { type: 'string', value: 'FILE', doc: 'also check consistency with checkpoints saved earlier (`linkgw records checkpoints > FILE`, or a witness\'s copy): truncation below them is caught' },
    quick: { type: 'boolean', doc: 'with --against: only the consistency of the saved checkpoints with the stored tree, without reading every record' },
    json: { type: 'boolean', doc: 'JSON lines: one per log, then the totals' },
  },
  details: 'Verifying needs only public keys: no passphrase and no PIN. Leaves newer than the latest checkpoint are reported as unsigned (normal for up to one LINKGW_CHECKPOINT_INTERVAL_MS while the gateway runs).',
  run: async (inv) => {
    const { s, store } = await openStore();
    const { verifyRecordsCommand } = await import('../../records/log-commands.js');
    try {
      const progress =
        !inv.options.json && process.stderr.isTTY ? (logId: string, done: number, total: number) => process.stderr.write(`\r${logId}: ${done}/${total} records`) : undefined;
      const { reports, summary } = await verifyRecordsCommand(store, readSealPublicKeys(keyringLocation(s).path), {
        ...(inv.options.against ? { againstFile: inv.options.against } : {}),
        quick: inv.options.quick,
        ...(progress ? { progress } : {}),
      });
      if (progress) process.stderr.write('\n');
      const p = new Printer(inv.options.json);
      if (inv.options.json) {
        for (const r of reports) p.object(r);
        p.object(summary);
      } else {
        p.rows(
          reports.map((r) => ({
            origin: r.origin,
            records: r.records,
            signed: r.signedSize,
            unsigned: r.unsigned,
            result: r.problem ? `${r.problem.kind} at leaf ${r.problem.leafIndex ?? '?'} (${r.problem.recordId ?? '-'}): ${r.problem.detail}` : 'ok',
          })),
          [
            ['origin', 'LOG'],
            ['records', 'RECORDS'],
            ['signed', 'SIGNED'],
            ['unsigned', 'UNSIGNED'],
            ['result', 'RESULT'],
          ],
        );
        p.write(`${summary.logs} log${summary.logs === 1 ? '' : 's'}, ${summary.records} records, ${summary.tampered ? `${summary.tampered} tampered with` : 'none tampered with'}\n`);
      }
      return summary.tampered ? EXIT.failure : EXIT.ok;
    } finally {
      await store.close();
    }
  },
});

const checkpoints = command({
  summary: 'the latest signed checkpoint of every log, with its witnesses\' cosignatures, as JSON lines: keep them outside the store',
  args: { min: 0, max: 0 },
  options: {},
  details: 'Save the output somewhere the store\'s operators cannot rewrite (or give it to the supervisor); `linkgw records verify --against FILE` then catches any removal of records below these checkpoints.',
  run: async () => {
    const { store } = await openStore();
    const { latestCheckpointLines } = await import('../../records/log-commands.js');
    try {
      const p = new Printer(true);
      for (const line of await latestCheckpointLines(store)) p.object(line);
    } finally {
      await store.close();
    }
  },
});

export const recordsGroup: CommandGroup = {
  name: 'records',
  summary: 'the access record store ($LINKGW_RECORDS_URL, else SQLite in the data directory): one transparency log per replica',
  commands: { verify, checkpoints },
};
