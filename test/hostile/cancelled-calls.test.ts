/**
 * Issue 20, item 5: cancelled calls are not carried out. An agency sends IssueCode calls as HTTP/2 Rapid Reset
 * does (HEADERS, DATA and RST_STREAM in one write, over and over). Before the fix each was computed, committed
 * as an ISSUED record and logged OK, though no answer could ever reach anyone. Now a call cancelled in time
 * leaves no record at all, and one whose record landed after it was cancelled is followed by its NOT_RELEASED
 * record: no record in the log claims an answer that was released when it was not.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { constants } from 'node:http2';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Outcome } from '../../src/core/access-record.js';
import { IssueCodeRequestSchema } from '../../src/gen/linkage/v1/gateway_pb.js';
import { SqliteRecordStore } from '../../src/records/sqlite-store.js';
import { startHarness, tempDir } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';
import { grpcFrame, grpcRequest, rawSession } from '../helpers/raw-h2.js';
import { until } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('calls reset as soon as they are sent (Rapid Reset)', () => {
  it('leave no record claiming an answer: none at all, or one followed by NOT_RELEASED', async () => {
    const dataDir = tempDir();
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const h = await startHarness({ dataDir });
    let stopped = false;
    cleanups.push(() => (stopped ? undefined : h.stop()));
    const session = await rawSession(h.gw.address, dataDir, 'welfare');
    cleanups.push(() => session.destroy());
    const numbers = population(81, 91);
    const closed: Promise<void>[] = [];
    for (let round = 0; round < 8; round++) {
      // Ten at a time, each HEADERS + DATA + RST_STREAM in the same tick: one write on the wire.
      for (const n of numbers.slice(round * 10, round * 10 + 10)) {
        const req = grpcRequest(session, '/linkage.v1.LinkageGateway/IssueCode');
        req.end(grpcFrame(toBinary(IssueCodeRequestSchema, create(IssueCodeRequestSchema, { personalNumber: n }))));
        req.close(constants.NGHTTP2_CANCEL);
        closed.push(new Promise((r) => req.on('close', () => r())));
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(closed);
    // One call that goes through, after them all: its record is the one ISSUED record that needs no correction.
    const sentinel = await h.client('welfare').issueCode(numbers[80]!);
    await until(() => h.gw.inFlight.total === 0);
    await h.stop();
    stopped = true;

    const store = await SqliteRecordStore.open(join(dataDir, 'records.sqlite'), { readonly: true });
    cleanups.push(() => store.close());
    const [log] = await store.logs();
    const leaves = await store.readLeaves(log!.logId, 0, log!.size, log!.size);
    const issued = leaves.filter((r) => r.requester === 'welfare' && r.outcome === Outcome.ISSUED).map((r) => r.recordId);
    const corrected = new Set(leaves.filter((r) => r.outcome === Outcome.NOT_RELEASED).map((r) => r.correctsRecordId));
    expect(issued).toContain(sentinel.recordId);
    const unanswered = issued.filter((id) => id !== sentinel.recordId && !corrected.has(id));
    expect(unanswered).toEqual([]);
    // Most were stopped before anything was computed or committed.
    expect(issued.length).toBeLessThan(80);
  });
});
