/**
 * The legal-basis table reloads while queries run: a row removed takes effect, no request in flight fails
 * for it, and a broken file leaves the running table in place.
 */
import { status } from '@grpc/grpc-js';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';

let h: Harness;
let file: string;
const original = readFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), 'utf8');

beforeAll(async () => {
  const dir = tempDir();
  file = join(dir, 'legal-basis.json');
  copyFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), file);
  h = await startHarness({ env: { LINKGW_LEGAL_BASIS: file } });
  h.gw.policy.watchFiles();
});
afterAll(async () => {
  await h?.stop();
});


describe('legal-basis reload', () => {
  it('applies a changed file without failing queries in flight, and ignores a broken one', async () => {
    const codec = new AgencyCodec(h.gw.keyring);
    const person = population(100, 21).find((n) => {
      const c = checkPersonalNumber(n);
      return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
    })!;
    const pension = h.client('pension');
    const welfare = h.client('welfare');
    const { code } = await pension.issueCode(person);
    const wc = (await welfare.issueCode(person)).code;
    const q = { code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' };

    // Welfare's row B2-002 is removed while pension's B2-001 queries keep flowing.
    let failures = 0;
    let running = true;
    const load = (async () => {
      let n = 0;
      while (running) {
        await pension.queryInformation(q).catch(() => failures++);
        n++;
      }
      return n;
    })();
    const doc = JSON.parse(original) as { version: string; rows: { id: string }[] };
    doc.version = 'reloaded';
    doc.rows = doc.rows.filter((r) => r.id !== 'B2-002');
    writeFileSync(file, JSON.stringify(doc));
    await until(async () => h.gw.policy.current.table.version === 'reloaded');
    const s = await statusOf(welfare.queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }));
    expect(s.code).toBe(status.PERMISSION_DENIED);

    // A broken file is reported and the table in force stays.
    writeFileSync(file, '{ not json');
    await new Promise((r) => setTimeout(r, 400));
    expect(h.gw.policy.reload()).toBe(false);
    expect(h.gw.policy.current.table.version).toBe('reloaded');
    running = false;
    const total = await load;
    expect(total).toBeGreaterThan(0);
    expect(failures).toBe(0);
    expect(h.logs()).toContain('policy reload failed; the previous policy stays in force');
  });
});
