/**
 * Self-information display (自己情報表示): the disclosure agency may query providers only under the
 * `disclosure.self-information` rows, each query is recorded and shown to the person, and the policy that
 * would let it reach what a non-disclosable row protects, or let it query under any other row, is refused.
 */
import { status } from '@grpc/grpc-js';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicy, PolicyFileError } from '../../src/config/policy.js';
import { PACKAGE_ROOT } from '../../src/config/settings.js';
import { Outcome } from '../../src/gen/linkage/v1/records_pb.js';
import { startHarness, statusOf, tempDir, type Harness } from '../helpers/gateway-harness.js';

const PERSON = '123456789018';
const SELF = 'disclosure.self-information';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.stop());

describe('the disclosure agency querying for self-information display', () => {
  it('gets what a provider holds under a self-information row, recorded and listed to the person', async () => {
    const disclosure = h.client('disclosure');
    const { code } = await disclosure.issueCode(PERSON);
    let recordId: string;
    try {
      const r = await disclosure.queryInformation({ code, provider: 'tax', procedure: SELF, item: 'income' });
      expect(r.legalBasisRow).toBe('SELF-001');
      expect(JSON.parse(Buffer.from(r.payload).toString('utf8'))).toMatchObject({ agency: 'tax', item: 'income' });
      recordId = r.recordId;
    } catch (e) {
      // About one person in sixteen is unknown to a simulated provider: NOT_FOUND, recorded too.
      expect((e as { code: number }).code).toBe(status.NOT_FOUND);
      recordId = (e as { metadata: { get(k: string): unknown[] } }).metadata.get('x-record-id')[0] as string;
    }
    const listed = await disclosure.listRecords({ code });
    const rec = listed.find((r) => r.recordId === recordId)!;
    expect(rec).toMatchObject({ requester: 'disclosure', provider: 'tax', procedure: SELF, legalBasisRow: 'SELF-001' });
    expect([Outcome.PROVIDED, Outcome.NOT_FOUND]).toContain(rec.outcome);
  });

  it('is refused (and recorded) under any other procedure, and for an item outside its rows', async () => {
    const disclosure = h.client('disclosure');
    const { code } = await disclosure.issueCode(PERSON);
    const other = await statusOf(disclosure.queryInformation({ code, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }));
    expect(other.code).toBe(status.PERMISSION_DENIED);
    expect(other.details).toMatch(/may not query information except for self-information display/);
    const dv = await statusOf(disclosure.queryInformation({ code, provider: 'tax', procedure: 'welfare.dv-shelter-support', item: 'income' }));
    expect(dv.code).toBe(status.PERMISSION_DENIED);
    const item = await statusOf(disclosure.queryInformation({ code, provider: 'tax', procedure: SELF, item: 'pension-benefit' }));
    expect(item.code).toBe(status.PERMISSION_DENIED);
    expect(item.details).toMatch(/no legal basis/);
    // The DV attempt is recorded, and like every record naming the DV procedure, never disclosed.
    const listed = await disclosure.listRecords({ code });
    expect(listed.some((r) => r.procedure === 'welfare.dv-shelter-support')).toBe(false);
    expect(listed.filter((r) => r.outcome === Outcome.DENIED).map((r) => r.procedure)).toEqual(expect.arrayContaining(['welfare.public-assistance', SELF]));
  });

  it('is not open to other agencies: a requester has no self-information row', async () => {
    const welfare = h.client('welfare');
    const { code } = await welfare.issueCode(PERSON);
    expect((await statusOf(welfare.queryInformation({ code, provider: 'tax', procedure: SELF, item: 'income' }))).code).toBe(status.PERMISSION_DENIED);
  });
});

describe('the policy bounds self-information rows', () => {
  function withRows(edit: (rows: Record<string, unknown>[]) => void): { agenciesFile: string; legalBasisFile: string } {
    const dir = tempDir('linkgw-self-');
    const agenciesFile = join(dir, 'agencies.json');
    const legalBasisFile = join(dir, 'legal-basis.json');
    copyFileSync(join(PACKAGE_ROOT, 'config', 'agencies.json'), agenciesFile);
    const doc = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'config', 'legal-basis.json'), 'utf8')) as { rows: Record<string, unknown>[] };
    edit(doc.rows);
    writeFileSync(legalBasisFile, JSON.stringify(doc));
    return { agenciesFile, legalBasisFile };
  }
  const refused = (src: { agenciesFile: string; legalBasisFile: string }) => {
    try {
      loadPolicy(src);
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyFileError);
      return (e as Error).message;
    }
    throw new Error('expected the policy to be refused');
  };

  it('accepts the shipped table', () => {
    expect(loadPolicy(withRows(() => undefined)).table.rows.filter((r) => r.procedure === SELF).map((r) => r.id)).toEqual(['SELF-001', 'SELF-002', 'SELF-003', 'SELF-004']);
  });

  it('refuses the disclosure agency as requester of another row', () => {
    expect(refused(withRows((rows) => rows.push({ id: 'X-1', requester: 'disclosure', procedure: 'welfare.public-assistance', provider: 'tax', items: ['income'], basis: 'x' })))).toMatch(
      /X-1: the disclosure agency may be the requester of disclosure.self-information rows only/,
    );
  });

  it('refuses a self-information row for another requester, a non-disclosable one, or one reaching an item only a non-disclosable row lists', () => {
    expect(refused(withRows((rows) => rows.push({ id: 'X-2', requester: 'welfare', procedure: SELF, provider: 'tax', items: ['income'], basis: 'x' })))).toMatch(/X-2: .*disclosure role/);
    expect(
      refused(
        withRows((rows) => {
          rows.splice(rows.findIndex((r) => r.id === 'SELF-003'), 1);
          rows.push({ id: 'X-3', requester: 'disclosure', procedure: SELF, provider: 'employment', items: ['unemployment-benefit'], basis: 'x', nonDisclosable: true });
        }),
      ),
    ).toMatch(/X-3: .*cannot be non-disclosable/);
    const dvOnly = withRows((rows) => {
      rows.splice(rows.findIndex((r) => r.id === 'SELF-004'), 1);
      rows.push({ id: 'DV-2', requester: 'welfare', procedure: 'welfare.dv-shelter-support', provider: 'welfare', items: ['shelter-placement'], basis: 'x', nonDisclosable: true });
      rows.push({ id: 'X-4', requester: 'disclosure', procedure: SELF, provider: 'welfare', items: ['shelter-placement'], basis: 'x' });
    });
    expect(refused(dvOnly)).toMatch(/X-4: item "shelter-placement" is listed only by non-disclosable rows/);
  });
});
