/** The README is the front door: it documents every setting the gateway reads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_DOC, PACKAGE_ROOT } from '../../src/config/settings.js';

describe('README', () => {
  it('names every LINKGW_* setting', () => {
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const names = ENV_DOC.flatMap(([k]) => k.split(' / ').map((n, i) => (i === 0 ? n : k.split(' / ')[0]!.replace(/_[A-Z]+$/, '') + n)));
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) expect(readme, `${n} is not in the README`).toContain(n);
  });
});
