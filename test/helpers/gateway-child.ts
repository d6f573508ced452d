/**
 * `linkgw serve` as a child process for fault tests: its log is kept, a test can wait for a line, and its exit
 * (code, signal, when) is a promise. Every child is killed by `killChildren` (afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'linkgw.js');
const children = new Set<ChildProcess>();

export interface GatewayChild {
  readonly child: ChildProcess;
  /** Everything it wrote to stderr (JSON log lines, and the CLI's last word). */
  log(): string;
  /** Resolves with the first match of `re` in the log, rejects after `ms` or when the process exits first. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `shell`: commands run before the gateway in the same shell (resource limits), e.g. `ulimit -f 12`. */
export function startChild(env: Record<string, string>, args: string[] = ['serve'], o: { shell?: string } = {}): GatewayChild {
  const options = { env: { ...process.env, LINKGW_LISTEN: '127.0.0.1:0', LINKGW_METRICS_LISTEN: '127.0.0.1:0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const child = o.shell
    ? spawn('bash', ['-c', `${o.shell}; exec "$0" "$@"`, process.execPath, BIN, ...args], options)
    : spawn(process.execPath, [BIN, ...args], options);
  children.add(child);
  let text = '';
  const listeners = new Set<() => void>();
  const onData = (b: Buffer) => {
    text += b.toString();
    for (const l of listeners) l();
  };
  child.stderr!.on('data', onData);
  child.stdout!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return {
    child,
    log: () => text,
    exited,
    waitFor: (re, ms = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(text);
          if (!m) return;
          done();
          resolve(m);
        };
        const timer = setTimeout(() => (done(), reject(new Error(`not seen within ${ms} ms: ${re}\n${text}`))), ms);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        void exited.then(({ code, signal }) => {
          if (!listeners.has(check)) return;
          check();
          if (!listeners.has(check)) return;
          done();
          reject(new Error(`exited (${code ?? signal}) before ${re} was seen:\n${text}`));
        });
        check();
      }),
  };
}

/** The gRPC and ops addresses a started gateway logs. */
export async function servingAddresses(g: GatewayChild, ms = 30_000): Promise<{ address: string; ops: string }> {
  const m = await g.waitFor(/"msg":"gateway serving".*?"address":"([^"]+)".*?"ops":"([^"]+)"/, ms);
  return { address: m[1]!, ops: m[2]! };
}

export function killChildren(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  children.clear();
}
