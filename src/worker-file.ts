/**
 * Where a worker thread's module is. Compiled, it is the `.js` file next to the caller. Run from TypeScript
 * sources (vitest), Node cannot start a worker on a `.ts` file, so the compiled one in `dist/` is used: the
 * test command builds first.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));

export function workerFile(callerUrl: string, name: string): URL {
  const caller = fileURLToPath(callerUrl);
  if (!caller.endsWith('.ts')) return new URL(`./${name}.js`, callerUrl);
  const dist = join(SRC, '..', 'dist', relative(SRC, dirname(caller)), `${name}.js`);
  if (!existsSync(dist)) throw new Error(`worker ${name}: ${dist} is missing; run "npm run build" first`);
  return pathToFileURL(dist);
}
