/**
 * `linkgw migrate`: brings the record store's schema ($LINKGW_RECORDS_URL, else SQLite in the data directory)
 * to the version this linkgw needs, and exits; `--status` only shows the steps. Needs no keyring: it is what a
 * Kubernetes Job (the Helm chart's pre-install/pre-upgrade hook) runs with the schema owner's URL, while the
 * gateways run with LINKGW_RECORDS_MIGRATE=verify and a role without DDL rights.
 */
import { join } from 'node:path';
import { ensureDirectory } from '../../config/data-dir.js';
import { settingsFromEnv } from '../../config/settings.js';
import { command, EXIT, type CommandGroup } from '../command.js';
import { Printer } from '../output.js';

const migrate = command({
  summary: 'apply the record store\'s pending schema migrations (under a PostgreSQL advisory lock) and exit; --status shows applied and pending steps',
  args: { min: 0, max: 0 },
  options: {
    status: { type: 'boolean', doc: 'only show each step (applied, adopted, pending…); exit 1 if the schema is not current' },
    json: { type: 'boolean', doc: 'JSON lines: one per step, then the summary' },
  },
  details: [
    'Forward only: each step runs once, in its own transaction, and is recorded in schema_migrations with the checksum of its SQL.',
    'A store created before numbered migrations is adopted (its steps recorded, no DDL run). A store migrated by a newer linkgw, or',
    'whose recorded steps differ from this linkgw\'s, is refused (exit 78). Waits up to LINKGW_RECORD_STORE_WAIT_S for PostgreSQL.',
  ].join('\n'),
  run: async (inv) => {
    const s = settingsFromEnv();
    const { migrateStore } = await import('../../records/migrate-command.js');
    const { createLogger } = await import('../../log/logger.js');
    if (!s.recordsUrl && !inv.options.status) ensureDirectory(s.dataDir, 'LINKGW_DATA_DIR');
    const out = await migrateStore(
      { url: s.recordsUrl, sqlitePath: join(s.dataDir, 'records.sqlite') },
      { statusOnly: inv.options.status, startWaitMs: s.recordStoreWaitMs, log: createLogger({ level: s.logLevel, base: { service: 'linkgw', command: 'migrate' } }) },
    );
    const p = new Printer(inv.options.json);
    const summary = {
      store: out.store,
      where: out.where,
      version: out.version,
      expected: out.expected,
      current: out.current,
      ...(out.report ? { adopted: out.report.adopted, applied: out.report.applied.map((a) => a.version) } : {}),
    };
    if (inv.options.json) {
      for (const st of out.steps) p.object(st);
      p.object(summary);
    } else {
      p.rows(out.steps, [
        ['version', 'VERSION'],
        ['name', 'NAME'],
        ['state', 'STATE'],
        ['appliedAt', 'APPLIED AT'],
      ]);
      const did = out.report ? [out.report.adopted.length ? `adopted ${out.report.adopted.join(', ')}` : '', out.report.applied.length ? `applied ${out.report.applied.map((a) => a.version).join(', ')}` : ''].filter(Boolean).join('; ') || 'nothing to do' : '';
      p.write(`${out.where}: schema version ${out.version} of ${out.expected}${out.current ? ', current' : ', not current'}${did ? ` (${did})` : ''}\n`);
    }
    return out.current ? EXIT.ok : EXIT.failure;
  },
});

export const migrateGroup: CommandGroup = { name: 'migrate', summary: migrate.summary, commands: { '': migrate } };
