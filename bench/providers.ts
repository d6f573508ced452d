/**
 * The providing agencies of a bench target in their own process (bench/baseline/provider-server.ts), and the
 * agency registry that points a gateway at them (LINKGW_SIMULATE=0, LINKGW_AGENCIES). Gateway and relay
 * targets call the same kind of process, so its CPU is measured apart from the target's.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, ROOT } from './budget.js';
import { startServer, type Server } from './procs.js';

/** Starts the provider process; its `ready.providers` is agency → address. */
export function startProviders(o: { name: string; dataDir: string; env: NodeJS.ProcessEnv; logFile: string; nodeFlags: string[] }): Promise<Server> {
  rmSync(o.logFile, { force: true });
  return startServer({
    name: o.name,
    command: process.execPath,
    args: [...o.nodeFlags, '--import', 'tsx', join(BENCH_DIR, 'baseline', 'provider-server.ts')],
    env: { ...o.env, LINKGW_DATA_DIR: o.dataDir },
    cwd: ROOT,
    logFile: o.logFile,
    readyMsg: 'baseline serving',
    timeoutMs: 60_000,
  });
}

/** The addresses a started provider process serves on. */
export function providerAddresses(p: Server): Record<string, string> {
  return (p.ready.providers ?? {}) as Record<string, string>;
}

/** A copy of config/agencies.json in `dataDir` whose provider addresses are `providers`; returns its path. */
export function registryFor(dataDir: string, providers: Record<string, string>): string {
  const reg = JSON.parse(readFileSync(join(ROOT, 'config', 'agencies.json'), 'utf8')) as { agencies: { id: string; provider?: { address: string } }[] };
  for (const a of reg.agencies) if (a.provider && providers[a.id]) a.provider.address = providers[a.id]!;
  const f = join(dataDir, 'bench-agencies.json');
  writeFileSync(f, JSON.stringify(reg, null, 2) + '\n');
  return f;
}
