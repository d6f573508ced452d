/**
 * The mapping engine's worker thread (run by piscina; the pool is set up in pooled-engine.ts, the wire format is
 * mapping-wire.ts). It only exports handlers: each takes one batch for one agency.
 *
 * The codec is built on first use from the master keys in piscina's `workerData`, so importing this module
 * elsewhere starts nothing.
 */
import { workerData } from 'node:worker_threads';
import { move } from 'piscina';
import { AgencyCodec } from '../core/agency-code.js';
import { codesOf, joinCodes, packDecoded, type DecodeTask, type IssueTask, type MappingWorkerData } from './mapping-wire.js';

let codec: AgencyCodec | undefined;

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
