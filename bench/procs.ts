/**
 * Child processes of a bench run: servers started and waited for (a JSON log line on stderr says they serve),
 * and commands run to completion with a time limit. Every child is registered and killed when the run ends,
 * however it ends (normal exit, error, SIGINT, SIGTERM).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();

function killAllNow(): void {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  live.clear();
}

let installed = false;
/** Kill every child at exit and on SIGINT/SIGTERM. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}: stopping children\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

export interface Server {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly logFile: string;
  /** The parsed "serving" log line. */
  readonly ready: Record<string, unknown>;
  readonly address: string;
  stop(graceMs?: number): Promise<number | null>;
}

function tail(file: string, n = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Starts a server and resolves when it logs a JSON line with `msg === readyMsg` and an `address`. */
export function startServer(o: {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  readyMsg: string;
  timeoutMs: number;
}): Promise<Server> {
  const log = createWriteStream(o.logFile, { flags: 'a' });
  const proc = spawn(o.command, o.args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      live.delete(proc);
      resolve(code);
    }),
  );
  proc.stdout!.pipe(log, { end: false });
  return new Promise<Server>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(new Error(`${o.name}: not serving after ${o.timeoutMs} ms\n${tail(o.logFile)}`));
    }, o.timeoutMs);
    const rl = createInterface({ input: proc.stderr! });
    rl.on('line', (line) => {
      log.write(line + '\n');
      if (done || !line.startsWith('{')) return;
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (j.msg !== o.readyMsg || typeof j.address !== 'string') return;
      done = true;
      clearTimeout(timer);
      resolve({
        name: o.name,
        proc,
        logFile: o.logFile,
        ready: j,
        address: j.address,
        stop: async (graceMs = 15_000) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          const code = await exited;
          clearTimeout(t);
          await new Promise<void>((r) => log.end(() => r()));
          return code;
        },
      });
    });
    void exited.then((code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      setTimeout(() => reject(new Error(`${o.name}: exited with ${code} before serving\n${tail(o.logFile)}`)), 100);
    });
  });
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Runs a command to completion; killed after `timeoutMs`. */
export function runCommand(command: string, args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<CommandResult> {
  return new Promise((resolve) => {
    const proc = spawn(command, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    proc.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < 50_000_000) stdout += d.toString();
    });
    proc.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 1_000_000) stderr += d.toString();
    });
    const t = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, o.timeoutMs);
    proc.on('error', (e) => {
      stderr += String(e);
    });
    proc.on('close', (code) => {
      clearTimeout(t);
      live.delete(proc);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ: 100 on Linux everywhere in practice). */
export const CLOCK_TICKS = 100;

/**
 * CPU time a process has used so far, in seconds: utime + stime of /proc/PID/stat, which count every thread
 * of the process (the event loop, libuv's pool, V8's GC and compiler threads, worker threads such as the
 * SQLite writer and the mapping pool). Null when the process is gone or /proc is not there.
 */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state): utime is 14, stime 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** CPU seconds used by each named process between `start()` and `stop()`. */
export interface CpuWindow {
  start(): void;
  stop(): Record<string, number>;
}

export function cpuWindow(pids: Record<string, number | undefined>): CpuWindow {
  let t0: Record<string, number | null> | null = null;
  return {
    start() {
      t0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
    },
    stop() {
      const out: Record<string, number> = {};
      if (!t0) return out;
      for (const [k, pid] of Object.entries(pids)) {
        const a = t0[k];
        const b = cpuSeconds(pid);
        if (a !== null && a !== undefined && b !== null) out[k] = b - a;
      }
      return out;
    },
  };
}
