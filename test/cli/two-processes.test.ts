/**
 * Two `linkgw serve` processes sharing one keyring, one PostgreSQL record store and one Redis serve the same
 * agencies consistently: identical codes, each other's codes converted, one idempotent retry across both,
 * one record store whose logs all verify.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgencyClient } from '../../src/cli/agency-client.js';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { loadKeyring } from '../../src/keys/keyring-file.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { PostgresRecordStore } from '../../src/records/postgres-store.js';
import { verifyStore } from '../../src/records/verify-store.js';
import { createPgSchema, tempDir } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { redisRun, removeKeys, testPrefix } from '../helpers/redis.js';
import { killServed, serve } from '../helpers/serve-process.js';

const clients: AgencyClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  killServed();
});
let dropSchema: (() => Promise<void>) | undefined;
const prefix = testPrefix('two-processes');
afterAll(async () => {
  await dropSchema?.();
  await removeKeys(prefix);
});

describe('two gateway processes', () => {
  it('share keyring, records and Redis, and serve the same agencies consistently', async () => {
    const pg = await createPgSchema();
    dropSchema = pg.drop;
    const shared = { LINKGW_RECORDS_URL: pg.url, LINKGW_REDIS_URL: redisRun().url, LINKGW_REDIS_KEY_PREFIX: prefix, LINKGW_REDIS_COMMAND_TIMEOUT_MS: '500' };
    const dirA = tempDir();
    const a = await serve({ ...shared, LINKGW_DATA_DIR: dirA, LINKGW_REPLICA_ID: 'process-a' });
    const dirB = tempDir();
    cpSync(join(dirA, 'keyring.json'), join(dirB, 'keyring.json'));
    cpSync(join(dirA, 'pki'), join(dirB, 'pki'), { recursive: true });
    const b = await serve({ ...shared, LINKGW_DATA_DIR: dirB, LINKGW_REPLICA_ID: 'process-b' });
    const client = (address: string, agency: string) => {
      const c = new AgencyClient({ address, agency, pkiDir: join(dirA, 'pki') });
      clients.push(c);
      return c;
    };

    const keyring = loadKeyring(join(dirA, 'keyring.json'));
    const codec = new AgencyCodec(keyring);
    const person = population(300, 77).find((n) => {
      const c = checkPersonalNumber(n);
      return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
    })!;
    const viaA = await client(a.address, 'pension').issueCode(person);
    const viaB = await client(b.address, 'pension').issueCode(person);
    expect(viaB.code).toBe(viaA.code);

    const q = { code: viaA.code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' };
    const first = await client(b.address, 'pension').queryInformation(q, { requestId: 'two-processes-1' });
    const retry = await client(a.address, 'pension').queryInformation(q, { requestId: 'two-processes-1' });
    expect(retry.recordId).toBe(first.recordId);

    const dc = (await client(a.address, 'disclosure').issueCode(person)).code;
    const seen = await client(b.address, 'disclosure').listRecords({ code: dc });
    expect(seen.map((r) => r.recordId)).toEqual(expect.arrayContaining([viaA.recordId, viaB.recordId, first.recordId]));
    expect(seen.filter((r) => r.recordId === first.recordId)).toHaveLength(1);

    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a, b].map((g) => new Promise((r) => (g.child.exitCode !== null ? r(null) : g.child.on('exit', r)))));
    const store = await PostgresRecordStore.open(pg.url);
    try {
      const reports = await verifyStore(store, keyring.sealPublicKeys);
      expect(reports).toHaveLength(2);
      expect(reports.every((r) => r.problem === null && r.records > 0)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
