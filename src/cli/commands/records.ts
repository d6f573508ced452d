/**
 * `linkgw records COMMAND`: the access record store of $LINKGW_RECORDS_URL (or SQLite in the data directory),
 * as one transparency log per replica (docs/transparency.md). To add a command, add an entry to `commands`.
 */
import { join } from 'node:path';
import { settingsFromEnv } from '../../config/settings.js';
import { keyringLocation, openKeyring, readSealPublicKeys } from '../../keys/keyring-file.js';
import { CliError, command, EXIT, UsageError, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

/**
 * The store as these commands need it: one that exists (a missing SQLite file is refused, never created: a
 * nightly verify must not pass on a wiped store), read-only for the commands that only read.
 */
async function openStore(access: 'read' | 'write') {
  const s = settingsFromEnv();
  const { openRecordStore } = await import('../../records/open-store.js');
  // As the gateway would: under LINKGW_RECORDS_MIGRATE=verify (a role without DDL rights) a store that is not
  // migrated is refused with "run `linkgw migrate`", not a permission error from DDL it may not run.
  return {
    s,
    store: await openRecordStore({ url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') }, { migrate: s.recordsMigrate, create: 'never', readonly: access === 'read' }),
  };
}

const verify = command({
  summary: 'rebuild every log from its records and check its stored tree and signed checkpoints; exit 1 if anything was tampered with',
  args: { min: 0, max: 0 },
  options: {
    against: { type: 'string', value: 'FILE', doc: 'also check consistency with checkpoints saved earlier (`linkgw records checkpoints > FILE`, or a witness\'s copy): truncation below them is caught' },
    from: { type: 'string', value: 'FILE', doc: 'incremental: start each log at a checkpoint verified earlier (`linkgw records checkpoints > FILE` after a verify that passed); only the records after it are read' },
    quick: { type: 'boolean', doc: 'with --against: only the consistency of the saved checkpoints with the stored tree, without reading every record' },
    'max-problems': { type: 'string', value: 'N', doc: 'print at most N problems in all, then how many more were found (default 100)' },
    json: { type: 'boolean', doc: 'JSON lines: one per log (its problems within the limit), then the totals' },
  },
  details:
    'Verifying needs only public keys: no passphrase and no PIN. The store is read in one snapshot, so the gateway may keep writing. Leaves newer than the latest checkpoint are reported as unsigned (normal for up to one LINKGW_CHECKPOINT_INTERVAL_MS while the gateway runs). A log purged by `records purge` is verified from its signed purge point. Progress goes to standard error when it is a terminal.',
  run: async (inv) => {
    const maxText = inv.options['max-problems'];
    const maxProblems = maxText === undefined ? 100 : Number(maxText);
    if (!Number.isSafeInteger(maxProblems) || maxProblems < 0) throw new UsageError('--max-problems takes a whole number');
    const { s, store } = await openStore('read');
    const { verifyRecordsCommand, limitProblems } = await import('../../records/log-commands.js');
    try {
      const tty = process.stderr.isTTY ? process.stderr : undefined;
      let drawn = 0;
      const progress = tty
        ? (logId: string, done: number, total: number) => {
            const now = Date.now();
            if (now - drawn < 100 && done < total) return;
            drawn = now;
            tty.write(`\r${logId}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} records (${total ? Math.floor((done / total) * 100) : 100}%)\x1b[K`);
          }
        : undefined;
      const { reports, summary } = await verifyRecordsCommand(store, readSealPublicKeys(keyringLocation(s).path), {
        ...(inv.options.against ? { againstFile: inv.options.against } : {}),
        ...(inv.options.from ? { fromFile: inv.options.from } : {}),
        quick: inv.options.quick,
        maxProblems: Math.max(1, maxProblems),
        ...(progress ? { progress } : {}),
      });
      if (tty && drawn) tty.write('\r\x1b[K');
      const { shown, more } = limitProblems(reports, maxProblems);
      const p = new Printer(inv.options.json);
      if (inv.options.json) {
        let left = maxProblems;
        for (const r of reports) {
          const problems = r.problems.slice(0, left);
          left -= problems.length;
          p.object({ ...r, problems });
        }
        p.object({ ...summary, problemsNotShown: more });
      } else {
        p.rows(
          reports.map((r) => ({
            origin: r.origin,
            records: r.records,
            signed: r.signedSize,
            unsigned: r.unsigned,
            from: r.purgedBelow && r.from === r.purgedBelow ? `${r.from} (purged)` : r.from,
            result: r.problem ? `${r.problemCount} problem${r.problemCount === 1 ? '' : 's'}, first: ${r.problem.kind} at leaf ${r.problem.leafIndex ?? '?'} (${r.problem.recordId ?? '-'}): ${r.problem.detail}` : 'ok',
          })),
          [
            ['origin', 'LOG'],
            // Only when some log did not start at leaf 0 (a purge, or --from).
            ...(reports.some((r) => r.from > 0) ? ([['from', 'FROM']] as [string, string][]) : []),
            ['records', 'RECORDS'],
            ['signed', 'SIGNED'],
            ['unsigned', 'UNSIGNED'],
            ['result', 'RESULT'],
          ],
        );
        if (shown.length) {
          p.write('\nPROBLEMS\n');
          for (const q of shown) p.write(`${q.logId}: ${q.kind} at leaf ${q.leafIndex ?? '?'} (${q.recordId ?? '-'}): ${q.detail}\n`);
          if (more) p.write(`and ${more} more\n`);
          p.write('\n');
        }
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
    const { store } = await openStore('read');
    const { latestCheckpointLines } = await import('../../records/log-commands.js');
    try {
      const p = new Printer(true);
      for (const line of await latestCheckpointLines(store)) p.object(line);
    } finally {
      await store.close();
    }
  },
});

const purge = command({
  summary: 'remove the records older than TIME (per log, the longest signed prefix, in blocks of 8), recording a purge signed by the log\'s key that `records verify` accepts',
  args: { min: 0, max: 0 },
  options: {
    before: { type: 'string', value: 'TIME', doc: 'records requested before this are removed: an ISO 8601 time, or an age such as 7y, 90d or 12h' },
    'dry-run': { type: 'boolean', doc: 'check and report what would be purged; change nothing (no key needed beyond opening the keyring)' },
    json: { type: 'boolean', doc: 'JSON lines: one per log, what was purged' },
  },
  details:
    'Run it from a CronJob (docs/adr/0103-retention.md), after saving the latest checkpoints (`linkgw records checkpoints`) outside the store. It opens the keyring (passphrase or PIN as for the gateway) to sign each purge. Before signing, the records to be removed are verified; a log that does not verify is not purged (exit 1). The purge of a log is one transaction: its `log_purges` row, its records and their persons. Tree nodes and checkpoints (hashes only) are kept.',
  run: async (inv) => {
    if (!inv.options.before) throw new UsageError('records purge needs --before TIME (for example --before 7y)');
    const { parseBefore, purgeRecords } = await import('../../records/purge.js');
    let before: number;
    try {
      before = parseBefore(inv.options.before);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { s, store } = await openStore('write');
    try {
      const { keyring } = await openKeyring(keyringLocation(s));
      let results;
      try {
        results = await purgeRecords(store, keyring.sealSigner, keyring.sealPublicKeys, {
          before,
          dryRun: inv.options['dry-run'],
          finished: (f) => {
            if (f.partitionsDropped.length) process.stderr.write(`linkgw: dropped ${f.partitionsDropped.length} monthly partition(s) of purged records: ${f.partitionsDropped.join(', ')}\n`);
          },
        });
      } finally {
        await keyring.close();
      }
      const p = new Printer(inv.options.json);
      const rows = results.map((r) => ({ ...r, before: new Date(before).toISOString(), dryRun: inv.options['dry-run'] }));
      if (inv.options.json) for (const r of rows) p.object(r);
      else
        p.rows(
          rows.map((r) => ({
            origin: r.origin,
            leaves: `${r.fromLeaf}..${r.belowLeaf}`,
            records: r.records,
            persons: r.persons,
            result: r.purged ? 'purged' : (r.reason ?? (r.dryRun ? 'would purge' : '')),
          })),
          [
            ['origin', 'LOG'],
            ['leaves', 'LEAVES'],
            ['records', 'RECORDS'],
            ['persons', 'PERSONS'],
            ['result', 'RESULT'],
          ],
        );
      return results.some((r) => r.reason?.startsWith('refused')) ? EXIT.failure : EXIT.ok;
    } finally {
      await store.close();
    }
  },
});

const seal = command({
  summary: 'sign the unsigned tail of every log whose writer is gone (or of --log ID), taking each log\'s writer lock; logs being written are left to their writer',
  args: { min: 0, max: 0 },
  options: {
    log: { type: 'string', value: 'ID', doc: 'only this log (its replica id, e.g. linkgw-2)' },
    wait: { type: 'string', value: 'MS', doc: 'wait this long for a log\'s writer lock (default 0: a log being written is skipped)' },
    json: { type: 'boolean', doc: 'JSON lines: one per log' },
  },
  details:
    'A gateway killed before it signed its last records (SIGKILL, OOM, a lost node) leaves them unsigned until a process takes its log again: the same replica id restarting, or this command (run by the chart\'s records-seal CronJob). It opens the keyring (passphrase or PIN as for the gateway) and needs a database role that may write (the gateway\'s runtime role), checks that each tail extends the last checkpoint and signs a checkpoint of the whole log. Exit 1 when a log does not extend its last checkpoint (run `records verify`).',
  run: async (inv) => {
    const waitMs = inv.options.wait === undefined ? 0 : Number(inv.options.wait);
    if (!Number.isSafeInteger(waitMs) || waitMs < 0) throw new UsageError('--wait takes a whole number of milliseconds');
    const { s, store } = await openStore('write');
    try {
      const [{ sealLogs }, { createLogger }] = await Promise.all([import('../../records/seal.js'), import('../../log/logger.js')]);
      const log = createLogger({ level: s.logLevel, base: { service: 'linkgw-records-seal' } });
      const { keyring } = await openKeyring(keyringLocation(s));
      let results;
      try {
        results = await sealLogs(store, keyring.sealSigner, log, { ...(inv.options.log !== undefined ? { logId: inv.options.log } : {}), waitMs });
      } finally {
        await keyring.close();
      }
      const p = new Printer(inv.options.json);
      if (inv.options.json) for (const r of results) p.object(r);
      else
        p.rows(
          results.map((r) => ({ ...r, signed: `${r.signedBefore} -> ${r.signedAfter}` })),
          [
            ['origin', 'LOG'],
            ['size', 'RECORDS'],
            ['signed', 'SIGNED'],
            ['result', 'RESULT'],
          ],
        );
      return results.some((r) => r.result.startsWith('refused')) ? EXIT.failure : EXIT.ok;
    } finally {
      await store.close();
    }
  },
});

const checkProof = command({
  summary: 'check saved records with their inclusion proofs offline: leaf, leaf hash, path to the checkpoint, the log\'s signature (and witnesses\' cosignatures); exit 1 if any fails',
  usage: 'FILE',
  args: { min: 1, max: 1 },
  options: {
    'verifier-key': { type: 'string', value: 'VKEY[,VKEY…]', doc: "the log's note verifier key(s), as `linkgw keys show` prints them (default: the data directory's keyring's sealing keys, under each proof's origin)" },
    'witness-key': { type: 'string', value: 'VKEY[,VKEY…]', doc: 'witness verifier keys: each must have cosigned the checkpoint' },
    json: { type: 'boolean', doc: 'JSON lines: one per record, then the totals' },
  },
  details:
    'FILE (or - for standard input) holds what `linkgw client disclosure records CODE --json` or `linkgw client AGENCY record-proof ID --json` printed: one linkage.v1.AccessRecord a line in canonical proto3 JSON with its `proof`, or a JSON array of them. Each record is checked without the gateway: its leaf decodes to the fields shown, hashes to the leaf hash, and the inclusion path leads to the root of a checkpoint signed by the log (and cosigned by every --witness-key). A record or proof edited after it was saved fails, and the exit status is 1.',
  run: async (inv) => {
    const { readFileSync } = await import('node:fs');
    const { checkProofFile } = await import('../../records/check-proof.js');
    const file = inv.args[0]!;
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    const list = (v: string | undefined) => (v ?? '').split(',').map((k) => k.trim()).filter(Boolean);
    const verifierKeys = list(inv.options['verifier-key']);
    const sealPublicKeys = verifierKeys.length ? undefined : readSealPublicKeys(keyringLocation(settingsFromEnv()).path);
    let checks;
    try {
      checks = checkProofFile(text, { verifierKeys, witnessKeys: list(inv.options['witness-key']), ...(sealPublicKeys ? { sealPublicKeys } : {}) });
    } catch (e) {
      throw new UsageError(`${file}: ${(e as Error).message}`);
    }
    if (checks.length === 0) throw new UsageError(`${file}: no records in it`);
    const failed = checks.filter((c) => !c.ok).length;
    const p = new Printer(inv.options.json);
    if (inv.options.json) {
      for (const c of checks) p.object(c);
      p.object({ records: checks.length, ok: checks.length - failed, failed });
    } else {
      p.rows(
        checks.map((c) => ({ ...c, at: c.origin ? `${c.origin} leaf ${c.leafIndex} of ${c.treeSize}` : '', result: c.ok ? (c.witnesses.length ? `ok, cosigned by ${c.witnesses.join(', ')}` : 'ok') : `FAILED: ${c.problem}` })),
        [
          ['item', '#'],
          ['recordId', 'RECORD'],
          ['at', 'IN LOG'],
          ['result', 'RESULT'],
        ],
      );
      p.write(`${checks.length} record${checks.length === 1 ? '' : 's'}, ${failed ? `${failed} failed` : 'all proven'}\n`);
    }
    return failed ? EXIT.failure : EXIT.ok;
  },
});

const backup = command({
  summary: 'copy the SQLite record store into FILE while the gateway writes (SQLite\'s online backup API), then verify the copy',
  usage: 'FILE',
  args: { min: 1, max: 1 },
  options: { json: { type: 'boolean', doc: 'one JSON line: the file, its size, logs and records' } },
  details:
    'The copy is one consistent state of the store, made from a connection of its own while the gateway keeps writing; it is written as FILE.partial (mode 0600), checked (integrity_check, then every log verified as `records verify` does, with the keyring\'s public keys: no passphrase), synced, and renamed to FILE. To restore: stop the gateway, put FILE in place as <data>/records.sqlite, start it (README "Backup and restore"). Back up the keyring too, separately: without it no code can be decoded again. PostgreSQL is backed up with its own tools (base backup and WAL archiving).',
  run: async (inv) => {
    const s = settingsFromEnv();
    if (s.recordsUrl)
      throw new CliError('records backup copies the embedded SQLite store; a PostgreSQL record store is backed up with pg_basebackup and WAL archiving (README "Backup and restore")');
    const { backupSqliteStore } = await import('../../records/backup.js');
    const result = await backupSqliteStore(join(s.dataDir, 'records.sqlite'), inv.args[0]!, readSealPublicKeys(keyringLocation(s).path));
    const p = new Printer(inv.options.json);
    if (inv.options.json) p.object(result);
    else p.write(`${result.file}: ${result.bytes.toLocaleString('en-US')} bytes, ${result.logs} log${result.logs === 1 ? '' : 's'}, ${result.records} records, verified${result.unsigned ? ` (${result.unsigned} not yet signed when copied)` : ''}\n`);
  },
});

export const recordsGroup: CommandGroup = {
  name: 'records',
  summary: 'the access record store ($LINKGW_RECORDS_URL, else SQLite in the data directory): one transparency log per replica',
  commands: { verify, checkpoints, purge, seal, backup, 'check-proof': checkProof },
};
