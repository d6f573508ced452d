/**
 * Two gateway processes' worth of state (two gateways in one test process) sharing one keyring, one PKI,
 * one PostgreSQL record store and one Redis: they serve the same agencies consistently.
 */
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { createPgSchema, startHarness, tempDir, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { redisRun, removeKeys, testPrefix } from '../helpers/redis.js';

let a: Harness;
let b: Harness;
let dropSchema: () => Promise<void>;
const prefix = testPrefix('replicas');

beforeAll(async () => {
  const pg = await createPgSchema();
  dropSchema = pg.drop;
  const env = { LINKGW_REDIS_URL: redisRun().url, LINKGW_REDIS_KEY_PREFIX: prefix };
  a = await startHarness({ pgUrl: pg.url, env: { ...env, LINKGW_REPLICA_ID: 'replica-a' } });
  const dirB = tempDir();
  mkdirSync(dirB, { recursive: true });
  cpSync(join(a.dataDir, 'keyring.json'), join(dirB, 'keyring.json'));
  cpSync(join(a.dataDir, 'pki'), join(dirB, 'pki'), { recursive: true });
  b = await startHarness({ pgUrl: pg.url, dataDir: dirB, env: { ...env, LINKGW_REPLICA_ID: 'replica-b' } });
});
afterAll(async () => {
  await b?.stop();
  await a?.stop();
  await dropSchema?.();
  await removeKeys(prefix);
});

describe('two gateway replicas', () => {
  it('issue the same codes, convert each other\'s codes, and share one record store', async () => {
    const codec = new AgencyCodec(a.gw.keyring);
    const person = population(200, 31).find((n) => {
      const c = checkPersonalNumber(n);
      return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
    })!;
    const viaA = await a.client('pension').issueCode(person);
    const viaB = await b.client('pension').issueCode(person);
    expect(viaB.code).toBe(viaA.code);

    // A code issued through A is used through B.
    const q = await b.client('pension').queryInformation({ code: viaA.code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    expect(q.legalBasisRow).toBe('B2-001');

    // The disclosure system, through A, sees what happened through B.
    const dc = (await a.client('disclosure').issueCode(person)).code;
    const seen = await a.client('disclosure').listRecords({ code: dc });
    expect(seen.map((r) => r.recordId)).toEqual(expect.arrayContaining([viaA.recordId, viaB.recordId, q.recordId]));

    // Each replica writes its own log; both verify.
    expect([a.gw.writer.logId, b.gw.writer.logId]).toEqual(['replica-a', 'replica-b']);
    const reports = await verifyStore(a.gw.store, a.gw.keyring.sealPublicKeys);
    expect(reports.map((r) => r.logId).sort()).toEqual(['replica-a', 'replica-b']);
    expect(reports.every((r) => r.problem === null && r.records > 0)).toBe(true);
  });
});
