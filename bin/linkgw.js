#!/usr/bin/env node
// The linkgw command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from 'node:fs';
const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('linkgw: not built yet; run "npm run build" first\n');
  process.exit(2);
}
await import(main.href);
