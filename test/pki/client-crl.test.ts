/** ClientCrl on its own: verdicts, a stale CRL under `open` and `closed`, CRLs that are not the bundle's. */
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { ClientCrl, parseCrls, serialKey } from '../../src/pki/client-crl.js';
import { crl, mint, ownCa } from '../helpers/certs.js';
import { tempDir } from '../helpers/gateway-harness.js';

const DAY = 86_400_000;
const quiet = createLogger({ level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

async function setup(stale: 'open' | 'closed', nextUpdate: Date) {
  const ca = await ownCa('CN=agencies CA');
  const other = await ownCa('CN=providers CA');
  const good = await mint(ca, 'CN=tax');
  const bad = await mint(ca, 'CN=pension');
  const elsewhere = await mint(other, 'CN=welfare');
  const dir = tempDir('linkgw-crl-unit-');
  writeFileSync(join(dir, 'ca.crt'), ca.cert.toString('pem') + '\n' + other.cert.toString('pem') + '\n');
  writeFileSync(join(dir, 'crl.pem'), await crl(ca, [bad.serial], { thisUpdate: new Date(nextUpdate.getTime() - 7 * DAY), nextUpdate }));
  const c = await ClientCrl.open({ file: join(dir, 'crl.pem'), caFile: join(dir, 'ca.crt'), stale, log: quiet });
  return { c, good: new X509Certificate(good.cert), bad: new X509Certificate(bad.cert), elsewhere: new X509Certificate(elsewhere.cert), ca, other };
}

describe('ClientCrl', () => {
  it('revokes listed serials of its CA only', async () => {
    const s = await setup('closed', new Date(Date.now() + DAY));
    try {
      expect(s.c.check(s.good)).toBe('good');
      expect(s.c.check(s.bad)).toBe('revoked');
      expect(s.c.check(s.elsewhere)).toBe('good'); // a CA with no CRL in the file
      expect(s.c.stale()).toBe(false);
    } finally {
      s.c.close();
    }
  });

  it('past nextUpdate: open keeps enforcing what it lists; closed refuses every certificate of that CA', async () => {
    const open = await setup('open', new Date(Date.now() - DAY));
    const closed = await setup('closed', new Date(Date.now() - DAY));
    try {
      expect(open.c.stale()).toBe(true);
      expect([open.c.check(open.good), open.c.check(open.bad)]).toEqual(['good', 'revoked']);
      expect([closed.c.check(closed.good), closed.c.check(closed.bad), closed.c.check(closed.elsewhere)]).toEqual(['stale', 'revoked', 'good']);
    } finally {
      open.c.close();
      closed.c.close();
    }
  });

  it('refuses a CRL that no CA of the bundle signed, even one naming a CA of the bundle', async () => {
    const ca = await ownCa('CN=agencies CA');
    const impostor = await ownCa('CN=agencies CA');
    await expect(parseCrls(await crl(impostor, []), ca.cert.toString('pem'))).rejects.toThrow(/not signed by a CA of the client CA bundle/);
    await expect(parseCrls('nothing here', ca.cert.toString('pem'))).rejects.toThrow(/no PEM CRL/);
  });

  it('compares serials whatever their case and leading zeros', () => {
    expect(serialKey('00ab12')).toBe(serialKey('AB12'));
  });
});
