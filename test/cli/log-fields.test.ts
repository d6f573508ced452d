/**
 * docs/log-fields.md lists every message the code logs (issue 21 item 8): a message added without its entry
 * fails here, naming the file and the message.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/config/settings.js';

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === 'gen' ? [] : files(join(dir, e.name))) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('docs/log-fields.md', () => {
  it('lists every message logged in src/', () => {
    const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'log-fields.md'), 'utf8').replace(/\\`/g, '`');
    const found: string[] = [];
    const missing: string[] = [];
    for (const f of files(join(PACKAGE_ROOT, 'src'))) {
      const src = readFileSync(f, 'utf8');
      for (const m of src.matchAll(/\.(?:debug|info|warn|error)\(\s*'((?:[^'\\]|\\.)+)'/g)) {
        const msg = m[1]!.replace(/\\'/g, "'");
        found.push(msg);
        if (!doc.includes(msg)) missing.push(`${relative(PACKAGE_ROOT, f)}: ${msg}`);
      }
    }
    expect(found.length).toBeGreaterThan(40);
    expect(missing).toEqual([]);
    // The access line and its fields.
    for (const field of ['requestId', 'traceId', 'method', 'agency', 'code', 'durationMs', 'recordId', 'records']) expect(doc).toContain(`| \`${field}\` |`);
  });
});
