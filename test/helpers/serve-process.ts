/** `linkgw serve` as a child process, as an operator runs it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const children: ChildProcess[] = [];
/** Kills every gateway process a test started and left running. */
export function killServed(): void {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
}

/** Starts `linkgw serve` with these settings on free ports; resolves once it logs its address. */
export async function serve(env: Record<string, string>): Promise<{ child: ChildProcess; address: string; log: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  child.stderr!.on('data', (b: Buffer) => (text += b.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway did not start:\n${text}`)), 20_000);
    child.stderr!.on('data', () => {
      const m = /"msg":"gateway serving".*?"address":"([^"]+)"/.exec(text);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`gateway exited ${code}:\n${text}`)));
  });
  return { child, address, log: () => text };
}

