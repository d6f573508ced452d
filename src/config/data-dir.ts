/**
 * The directories the gateway keeps state in (LINKGW_DATA_DIR, LINKGW_DEV_CA_DIR), created or checked at start
 * so that an unusable path stops the start at once, naming the path and the setting (exit status 78).
 *
 * Not `mkdirSync(dir, { recursive: true })`: on Node 20 it never returns for a path under /proc (mkdir answers
 * ENOENT, the parent exists, and it tries again forever; `LINKGW_DATA_DIR=/proc/linkgw linkgw serve` hung
 * with a busy CPU and could not even be stopped by SIGTERM). One level at a time, each error is reported.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { SettingsError } from './settings.js';

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, '')}` : String(err.message ?? e);
}

/** Creates `dir` and any missing parents (mode 0700), then checks that a file can be written in it. */
export function ensureDirectory(dir: string, setting: string): void {
  const target = resolve(dir);
  const fail = (what: string) => new SettingsError([`${setting}: ${what}`]);
  const missing: string[] = [];
  for (let p = target; ; ) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      // ENOTDIR: something above is a file; walking up finds it and says so.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fail(`${p} cannot be used (${reason(e)})`);
      missing.unshift(p);
      const parent = dirname(p);
      if (parent === p) throw fail(`${target} cannot be created (no such file system)`);
      p = parent;
      continue;
    }
    if (!isDir) throw fail(`${p} is not a directory`);
    break;
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fail(`${target} cannot be created: ${p}: ${reason(e)}`);
    }
  }
  // Root passes every permission check; a read-only or full file system, or a pseudo file system, does not.
  const probe = join(target, `.linkgw-write-check-${process.pid}`);
  try {
    writeFileSync(probe, 'ok\n', { mode: 0o600 });
  } catch (e) {
    throw fail(`${target} is not writable (${reason(e)})`);
  } finally {
    rmSync(probe, { force: true });
  }
}
