/**
 * Issue 20, item 10 (page tokens), through a real gateway over mTLS: ListAccessRecords' page tokens were plain
 * `<ms>:<leaf>:<replica>` and an edited one was accepted. Now a real token reads on to the next page; an edited
 * one, a made-up one in the old format, and a token from another person's listing are refused with
 * INVALID_ARGUMENT (the token's MAC covers the calling agency and the person listed, so another listing's token
 * is not a position in this one: refused, rather than quietly read as one).
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessRecords, type AccessRecord } from '../../src/gen/linkage/v1/records_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { startHarness, statusOf, type Harness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('ListAccessRecords page tokens', () => {
  it('read on with a real token; refuse an edited, a made-up or another listing’s token', async () => {
    const [a, b] = population(2, 3030);
    const disclosure = h.client('disclosure');
    // Four issuance records for each person.
    const codes: string[] = [];
    for (const n of [a!, b!]) {
      codes.push((await disclosure.issueCode(n)).code);
      for (const agency of ['welfare', 'pension', 'tax']) await h.client(agency).issueCode(n);
    }
    const [codeA, codeB] = codes as [string, string];

    const page1 = await disclosure.listRecords({ code: codeA, pageSize: 2 });
    expect(page1).toHaveLength(2);
    const token = page1[1]!.cursor;
    const page2 = await disclosure.listRecords({ code: codeA, pageSize: 2, pageToken: token });
    expect(page2).toHaveLength(2);
    const seen = new Set([...page1, ...page2].map((r: AccessRecord) => r.recordId));
    expect(seen.size).toBe(4);

    const refused = async (pageToken: string) => {
      const s = await statusOf(disclosure.listRecords({ code: codeA, pageSize: 2, pageToken }));
      expect(s.code, pageToken).toBe(status.INVALID_ARGUMENT);
      expect(s.details).toMatch(/^page_token: not a page token of this listing/);
    };
    // An edited token: one character changed anywhere (the position's time, leaf, log, or the MAC).
    const raw = Buffer.from(token, 'base64url');
    for (const i of [0, 3, 8, 12, 16, 18, raw.length - 1]) {
      const edited = Buffer.from(raw);
      edited[i]! ^= 0x04;
      await refused(edited.toString('base64url'));
    }
    // What the old format accepted: a position written by hand (here the real one of page 1's last record,
    // taken from the store).
    const last = (await h.gw.store.recordById(page1[1]!.recordId))!;
    await refused(Buffer.from(`${last.requestedAt}:${last.leafIndex}:${last.logId}`).toString('base64url'));
    // A token of person B's listing, with person A's code.
    const pageB = await disclosure.listRecords({ code: codeB, pageSize: 1 });
    await refused(pageB[0]!.cursor);
    // The token still works for its own listing after all that.
    expect((await disclosure.listRecords({ code: codeA, pageSize: 2, pageToken: token })).map((r) => r.recordId)).toEqual(page2.map((r) => r.recordId));
  });

  it('is not given for a record read by its id (no listing to go on with)', async () => {
    const [n] = population(1, 3031);
    const welfare = h.client('welfare');
    const { recordId } = await welfare.issueCode(n!);
    const proof = await callUnary(welfare.records, AccessRecords.method.getRecordProof, { recordId }, { deadline: Date.now() + 10_000 });
    expect(proof.record?.recordId).toBe(recordId);
    expect(proof.record?.cursor).toBe('');
  });
});
