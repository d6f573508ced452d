/**
 * The mapping engine's worker thread (run by piscina; the pool is set up in pooled-engine.ts, the wire format is
 * mapping-wire.ts). It only exports handlers: each takes one batch for one agency.
 *
 * The codec is built on first use from the master keys in piscina's `workerData`, so importing this module
 * elsewhere starts nothing.
 */
import { workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { AgencyCodec } from '../core/agency-code.js';
import { SubjectKeys } from '../core/subject-key.js';
import { issueBulkBatch, type BulkIssued, type BulkTask } from './bulk-batch.js';
import { codesOf, joinCodes, packDecoded, type DecodeTask, type IssueTask, type MappingWorkerData } from './mapping-wire.js';

let codec: AgencyCodec | undefined;
let subjects: SubjectKeys | undefined;

function theCodec(): AgencyCodec {
  if (codec) return codec;
  const d = workerData as MappingWorkerData | undefined;
  if (!d || !Array.isArray(d.masters)) throw new Error('the mapping worker was started without master keys');
  codec = new AgencyCodec({ current: d.current, masters: new Map(d.masters) });
  return codec;
}

/** Codes for a batch of valid personal numbers, joined. */
export function issue(task: IssueTask): string {
  return joinCodes(theCodec().encodeMany(task.agency, task.numbers));
}

/** Decodes a batch of codes; one double per code, moved back. */
export function decode(task: DecodeTask): unknown {
  return move(packDecoded(theCodec().decodeMany(task.agency, codesOf(task))));
}

function theSubjectKeys(): SubjectKeys {
  if (subjects) return subjects;
  const d = workerData as MappingWorkerData | undefined;
  if (!d?.subjectSecret) throw new Error('the mapping worker was started without the subject secret');
  subjects = new SubjectKeys(d.subjectSecret);
  return subjects;
}

/** One whole bulk message; the response, run and commitment are moved back, not copied. */
export function issueBulk(task: BulkTask): unknown {
  const r: BulkIssued = issueBulkBatch(theCodec(), theSubjectKeys(), task);
  if ('bytes' in task.numbers) task.numbers.bytes.fill(0);
  const moved = [r.response.buffer, r.run.buffer, r.commitment.buffer];
  return move({ [transferableSymbol]: moved, [valueSymbol]: r });
}
