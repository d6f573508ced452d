/**
 * Issue 8, findings 2 (first half), 3 and 6, tried as a hostile or careless agency would, through a real gateway:
 *  - a bulk message naming the same person twice is answered normally and records the person once, and other
 *    agencies' requests in the same commit succeed;
 *  - a misdirected query naming a non-disclosable procedure is kept out of the disclosure view;
 *  - 000000000000 passes the check digit but is refused.
 */
import { create } from '@bufbuild/protobuf';
import { status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IssueCodesRequestSchema, type IssueCodesResponse } from '../../src/gen/linkage/v1/gateway_pb.js';
import { startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

function bulk(agency: string, batches: string[][]): Promise<IssueCodesResponse[]> {
  const call = h.client(agency).issueStream(30_000);
  const got: IssueCodesResponse[] = [];
  const done = new Promise<IssueCodesResponse[]>((resolve, reject) => {
    call.on('data', (r: IssueCodesResponse) => got.push(r));
    call.on('end', () => resolve(got));
    call.on('error', reject);
  });
  for (const b of batches) call.write(create(IssueCodesRequestSchema, { personalNumbers: b }));
  call.end();
  return done;
}

function sqlite<T>(q: string): T[] {
  const db = new Database(join(h.dataDir, 'records.sqlite'), { readonly: true });
  try {
    return db.prepare(q).all() as T[];
  } finally {
    db.close();
  }
}

describe('a bulk message that names a person twice', () => {
  it('gets the same code at each position, each person once in the run of its record, and fails nobody else', async () => {
    const [a, b, c] = population(3, 801);
    const others = Promise.allSettled(Array.from({ length: 20 }, (_, i) => h.client(i % 2 ? 'tax' : 'welfare').issueCode(population(1, 900 + i)[0]!)));
    const [res] = await bulk('pension', [[a!, b!, a!, c!, a!]]);
    const codes = res!.results.map((r) => r.code);
    expect(res!.results.every((r) => r.status === 0)).toBe(true);
    expect(codes[0]).toBe(codes[2]);
    expect(codes[0]).toBe(codes[4]);
    expect(new Set(codes).size).toBe(3);
    expect((await others).map((o) => o.status)).toEqual(Array(20).fill('fulfilled'));
    // One run of three persons (the index is merged from it behind the commits).
    const rows = sqlite<{ n: number }>(`SELECT length(persons) / 16 AS n FROM person_runs WHERE record_id = '${res!.recordId}'`);
    expect(rows[0]!.n).toBe(3);
  });
});

describe('non-disclosable procedures', () => {
  it('stay out of disclosure whatever the outcome: wrong provider, other requester, wrong item', async () => {
    const [person] = population(1, 802);
    const welfare = h.client('welfare');
    const pension = h.client('pension');
    const wc = (await welfare.issueCode(person!)).code;
    const pc = (await pension.issueCode(person!)).code;
    const misdirected = [
      () => welfare.queryInformation({ code: wc, provider: 'pension', procedure: 'welfare.dv-shelter-support', item: 'income' }),
      () => pension.queryInformation({ code: pc, provider: 'tax', procedure: 'welfare.dv-shelter-support', item: 'income' }),
      () => welfare.queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.dv-shelter-support', item: 'pension-benefit' }),
    ];
    for (const q of misdirected) expect((await statusOf(q())).code).toBe(status.PERMISSION_DENIED);
    const dc = (await h.client('disclosure').issueCode(person!)).code;
    const seen = await h.client('disclosure').listRecords({ code: dc });
    expect(seen.some((r) => r.procedure === 'welfare.dv-shelter-support')).toBe(false);
    // The refusals are recorded all the same, as non-disclosable.
    const rows = sqlite<{ n: number }>(`SELECT count(*) AS n FROM access_records WHERE procedure = 'welfare.dv-shelter-support' AND outcome = 3 AND non_disclosable = 1`);
    expect(rows[0]!.n).toBe(3);
    // A disclosable procedure with the same item stays visible.
    await welfare.queryInformation({ code: wc, provider: 'tax', procedure: 'welfare.public-assistance', item: 'income' }).catch(() => undefined);
    const again = await h.client('disclosure').listRecords({ code: dc });
    expect(again.some((r) => r.procedure === 'welfare.public-assistance')).toBe(true);
  });
});

describe('000000000000', () => {
  it('passes the check digit but is refused, alone and in a batch', async () => {
    const s = await statusOf(h.client('pension').issueCode('000000000000'));
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details).toMatch(/not a number issued to anyone/);
    const [res] = await bulk('pension', [['000000000000', population(1, 803)[0]!]]);
    expect(res!.results.map((r) => r.status)).toEqual([status.INVALID_ARGUMENT, status.OK]);
  });
});
