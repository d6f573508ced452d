/**
 * Proofs through the real server (mTLS, port 0), in each store: every listed record carries an inclusion proof
 * that verifies against a signed checkpoint, here and in the Go reference implementations, with the leaf
 * rebuilt from the record shown; a record's proof by id goes to its parties and the disclosure agency only;
 * checkpoints and consistency proofs are served to any agency; a restarted gateway resumes its log.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { AgencyCodec } from '../../src/core/agency-code.js';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { checkPersonalNumber } from '../../src/core/personal-number.js';
import { decodeRecordLeaf } from '../../src/core/record-leaf.js';
import { noteVerifierFromKey } from '../../src/core/signed-note.js';
import { AccessRecords, type AccessRecord, type InclusionProof } from '../../src/gen/linkage/v1/records_pb.js';
import { callUnary } from '../../src/grpc/generic-client.js';
import { isEnrolled } from '../../src/providers/synthetic-data.js';
import { describeLogKeys } from '../../src/records/log-commands.js';
import type { AgencyClient } from '../../src/cli/agency-client.js';
import { startHarness, statusOf, tempDir, type Harness, type StoreKind } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { until } from '../helpers/wait.js';
import { b64, goVerify, type InteropInput } from '../interop/go-verifier.js';

const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
});

const rpc = {
  checkpoints: (c: AgencyClient) => callUnary(c.records, AccessRecords.method.getCheckpoints, {}, { deadline: Date.now() + 10_000 }),
  consistency: (c: AgencyClient, origin: string, oldSize: number, newSize: number) =>
    callUnary(c.records, AccessRecords.method.getConsistencyProof, { origin, oldSize: BigInt(oldSize), newSize: BigInt(newSize) }, { deadline: Date.now() + 10_000 }),
  record: (c: AgencyClient, recordId: string) => callUnary(c.records, AccessRecords.method.getRecordProof, { recordId }, { deadline: Date.now() + 10_000 }),
};

const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : null);

/** Checks a proof the way a party would: leaf against the record shown, leaf hash, path, signed checkpoint. */
function checkProof(r: AccessRecord, p: InclusionProof, logVkey: string): void {
  const { origin, leafIndex, fields } = decodeRecordLeaf(p.leaf);
  expect(origin).toBe(p.origin);
  expect(leafIndex).toBe(Number(p.leafIndex));
  expect({ ...fields, persons: undefined, subjectsCommitment: undefined, nonDisclosable: undefined }).toEqual({
    recordId: r.recordId,
    requestedAt: ms(r.requestedAt),
    providedAt: ms(r.providedAt),
    requester: r.requester,
    provider: r.provider,
    procedure: r.procedure,
    legalBasisRow: r.legalBasisRow,
    item: r.item,
    outcome: r.outcome,
    persons: undefined,
    subjectsCommitment: undefined,
    nonDisclosable: undefined,
  });
  expect(leafHash(p.leaf)).toEqual(Buffer.from(p.leafHash));
  const { checkpoint } = openCheckpoint(p.checkpoint, [noteVerifierFromKey(logVkey)], { origin: p.origin });
  expect(checkpoint.size).toBe(Number(p.treeSize));
  expect(verifyInclusion(Number(p.leafIndex), Number(p.treeSize), p.leafHash, p.hashes, checkpoint.rootHash)).toBe(true);
}

function interopItem(r: AccessRecord, p: InclusionProof): NonNullable<InteropInput['inclusion']>[number] {
  const { fields } = decodeRecordLeaf(p.leaf);
  return {
    checkpoint: p.checkpoint,
    leafIndex: Number(p.leafIndex),
    treeSize: Number(p.treeSize),
    hashes: p.hashes.map(b64),
    leafHash: b64(p.leafHash),
    // The record as the API showed it, with the two leaf fields the record does not carry.
    record: {
      recordId: r.recordId,
      requestedAt: ms(r.requestedAt)!,
      providedAt: ms(r.providedAt),
      requester: r.requester,
      provider: r.provider,
      procedure: r.procedure,
      legalBasisRow: r.legalBasisRow,
      item: r.item,
      outcome: r.outcome,
      nonDisclosable: fields.nonDisclosable,
      persons: fields.persons,
      subjectsCommitment: b64(fields.subjectsCommitment),
    },
  };
}

describe.each<StoreKind>(['sqlite', 'postgres'])('record proofs through the server, records in %s', (kind) => {
  it('give every party a proof of its records, and no one else', async () => {
    const dataDir = tempDir();
    const env = { LINKGW_REPLICA_ID: `proofs-${kind}`, LINKGW_CHECKPOINT_INTERVAL_MS: '50' };
    let h: Harness = await startHarness({ records: kind, dataDir, env });
    stops.push(() => h.stop());
    const codec = new AgencyCodec(h.gw.keyring);
    const person = population(300, 23).find((n) => {
      const c = checkPersonalNumber(n);
      return c.ok && isEnrolled('tax', codec.encode('tax', c.value));
    })!;
    const pension = h.client('pension');
    const { code } = await pension.issueCode(person);
    const q = await pension.queryInformation({ code, provider: 'tax', procedure: 'pension.eligibility', item: 'income' });
    await h.client('employment').issueBulk([person, population(1, 99)[0]!]);
    const disclosure = h.client('disclosure');
    const dc = (await disclosure.issueCode(person)).code;
    const size = h.gw.writer.size;
    await until(async () => ((await h.gw.store.latestCheckpoints())[0]?.size ?? 0) >= size, 20_000);

    const origin = `linkgw/records/proofs-${kind}`;
    const logVkey = describeLogKeys(h.gw.keyring.sealPublicKeys, h.gw.keyring.sealSigner.keyId, origin, `proofs-${kind}`).currentNoteVerifierKey as string;
    const listed = await disclosure.listRecords({ code: dc });
    expect(listed.map((r) => [r.requester, r.procedure])).toEqual([
      ['disclosure', 'code.issue'],
      ['employment', 'code.issue'],
      ['pension', 'pension.eligibility'],
      ['pension', 'code.issue'],
    ]);
    for (const r of listed) checkProof(r, r.proof!, logVkey);
    const viaGo = await goVerify({ logs: [logVkey], inclusion: listed.map((r) => interopItem(r, r.proof!)) });
    expect(viaGo.inclusion).toEqual(listed.map(() => ({ ok: true, origin, size: Number(listed[0]!.proof!.treeSize) })));
    // A record shown with another item no longer matches its leaf, here or in Go.
    const altered = { ...listed[2]!, item: 'pension-benefit' } as AccessRecord;
    expect(() => checkProof(altered, listed[2]!.proof!, logVkey)).toThrow();
    expect((await goVerify({ logs: [logVkey], inclusion: [interopItem(altered, listed[2]!.proof!)] })).inclusion[0]!.ok).toBe(false);

    // The query's record: its requester and provider get their copy, the disclosure agency too; others do not.
    for (const agency of ['pension', 'tax', 'disclosure']) {
      const got = await rpc.record(h.client(agency), q.recordId);
      expect(got.record?.recordId, agency).toBe(q.recordId);
      checkProof(got.record!, got.proof!, logVkey);
    }
    const denied = await statusOf(rpc.record(h.client('welfare'), q.recordId));
    const unknown = await statusOf(rpc.record(h.client('welfare'), '0000000000000000000000AA'));
    expect([denied.code, unknown.code]).toEqual([status.NOT_FOUND, status.NOT_FOUND]);
    expect(denied.details).toBe(unknown.details);
    expect((await statusOf(rpc.record(h.client('employment'), q.recordId))).code).toBe(status.NOT_FOUND);

    // Checkpoints and consistency proofs, for any agency.
    const [cp] = (await rpc.checkpoints(h.client('welfare'))).checkpoints;
    expect(cp!.origin).toBe(origin);
    const head = openCheckpoint(cp!.signedNote, [noteVerifierFromKey(logVkey)]).checkpoint;
    const early = openCheckpoint(listed[3]!.proof!.checkpoint, [noteVerifierFromKey(logVkey)]).checkpoint;
    expect(verifyConsistency(early.size, head.size, (await rpc.consistency(h.client('tax'), origin, early.size, head.size)).hashes, early.rootHash, head.rootHash)).toBe(true);
    expect((await statusOf(rpc.consistency(h.client('tax'), origin, head.size, head.size + 1))).code).toBe(status.INVALID_ARGUMENT);
    expect((await statusOf(rpc.consistency(h.client('tax'), origin, 3, 2))).code).toBe(status.INVALID_ARGUMENT);
    expect((await statusOf(rpc.consistency(h.client('tax'), 'linkgw/records/nowhere', 1, 2))).code).toBe(status.NOT_FOUND);

    // Restarted under the same replica id, the gateway resumes its log: old proofs still hold, the new tree
    // extends the old one. (The PostgreSQL harness makes a schema per start; test/records covers its resume.)
    if (kind === 'sqlite') {
      await h.stop();
      stops.pop();
      h = await startHarness({ records: kind, dataDir, env });
      stops.push(() => h.stop());
      await h.client('pension').issueCode(person);
      const later = h.gw.writer.size;
      expect(later).toBe(size + 2); // the listing's RECORDS_READ record, and this issuance
      await until(async () => ((await h.gw.store.latestCheckpoints())[0]?.size ?? 0) >= later, 20_000);
      const again = await rpc.record(h.client('tax'), q.recordId);
      checkProof(again.record!, again.proof!, logVkey);
      const now = openCheckpoint(again.proof!.checkpoint, [noteVerifierFromKey(logVkey)]).checkpoint;
      expect(verifyConsistency(head.size, now.size, (await rpc.consistency(h.client('tax'), origin, head.size, now.size)).hashes, head.rootHash, now.rootHash)).toBe(true);
    }
  });

  it('leave the proof out only for records newer than the latest checkpoint', async () => {
    const h = await startHarness({ records: kind, env: { LINKGW_REPLICA_ID: `late-${kind}`, LINKGW_CHECKPOINT_INTERVAL_MS: '3600000' } });
    stops.push(() => h.stop());
    const person = population(1, 41)[0]!;
    await h.client('pension').issueCode(person);
    await h.client('tax').issueCode(person);
    const dc = (await h.client('disclosure').issueCode(person)).code;
    // The first checkpoint follows the first commit; the next would be an hour later.
    await until(async () => (await h.gw.store.latestCheckpoints()).length > 0, 20_000);
    const [cp] = await h.gw.store.latestCheckpoints();
    const listed = await h.client('disclosure').listRecords({ code: dc });
    const signed = cp?.size ?? 0;
    expect(signed).toBeLessThan(h.gw.writer.size);
    const leafOf = async (id: string) => (await h.gw.store.recordById(id))!.leafIndex;
    for (const r of listed) expect(r.proof !== undefined, `leaf ${await leafOf(r.recordId)} of ${signed} signed`).toBe((await leafOf(r.recordId)) < signed);
  });
});
