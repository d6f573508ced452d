/**
 * `linkgw records check-proof FILE`: checks saved records with their inclusion proofs offline, as a party
 * would that keeps its §23 copy and shows it later. The input is what `linkgw client disclosure records --json`
 * and `linkgw client AGENCY record-proof --json` print (and what the citizen portal downloads): one
 * `linkage.v1.AccessRecord` a line in protobuf-es canonical proto3 JSON (`toJson(AccessRecordSchema, r)`,
 * bytes as base64) with its `proof`, or a JSON array of them.
 *
 * Per record: the leaf decodes to the fields shown (so the record cannot be edited without the leaf), hashes
 * to the proof's leaf hash, and the inclusion path leads from it to the root of the checkpoint, which is
 * signed by the log's key and, when witness keys are given, cosigned by each of them. All of it is src/core's
 * (merkle, checkpoint, signed-note, cosignature, record-leaf): nothing here is a second implementation.
 */
import type { KeyObject } from 'node:crypto';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { openCheckpoint } from '../core/checkpoint.js';
import { cosignatureVerifierFromKey } from '../core/cosignature.js';
import { leafHash, verifyInclusion } from '../core/merkle.js';
import { decodeRecordLeaf } from '../core/record-leaf.js';
import { ed25519NoteVerifier, NoteError, noteVerifierFromKey, type NoteVerifier } from '../core/signed-note.js';
import { AccessRecordSchema, type AccessRecord } from '../gen/linkage/v1/records_pb.js';

export interface ProofCheck {
  /** 1-based position in the file (line, or array element). */
  readonly item: number;
  readonly recordId: string;
  readonly origin: string | null;
  readonly leafIndex: number | null;
  readonly treeSize: number | null;
  /** Names of the witnesses whose cosignature verified (of those given). */
  readonly witnesses: readonly string[];
  readonly ok: boolean;
  /** Why it failed; absent when ok. Never repeats a field's value (the record may be about a person). */
  readonly problem?: string;
}

export interface ProofKeys {
  /** Verifier keys given (`--verifier-key`); when empty, `sealPublicKeys` under each proof's origin. */
  readonly verifierKeys?: readonly string[];
  readonly sealPublicKeys?: ReadonlyMap<string, KeyObject>;
  /** Witness verifier keys (`--witness-key`): each must have cosigned the checkpoint. */
  readonly witnessKeys?: readonly string[];
}

/** Reads JSON lines, or one JSON array, of AccessRecords; a line that is not one names its position. */
export function parseRecordFile(text: string): { item: number; record?: AccessRecord; error?: string }[] {
  const trimmed = text.trim();
  const values: { item: number; value?: unknown; error?: string }[] = [];
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(trimmed);
    } catch (e) {
      throw new Error(`not a JSON array: ${(e as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new Error('not a JSON array');
    arr.forEach((value, i) => values.push({ item: i + 1, value }));
  } else {
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      try {
        values.push({ item: i + 1, value: JSON.parse(line) });
      } catch {
        values.push({ item: i + 1, error: 'not JSON' });
      }
    });
  }
  return values.map(({ item, value, error }) => {
    if (error) return { item, error };
    try {
      return { item, record: fromJson(AccessRecordSchema, value as JsonValue) };
    } catch (e) {
      return { item, error: `not a linkage.v1.AccessRecord (${(e as Error).message.replace(/: .*$/, '')})` };
    }
  });
}

const ms = (t: { seconds: bigint; nanos: number } | undefined) => (t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : null);

/** Checks one record and its proof (see the file comment). */
export function checkRecordProof(item: number, r: AccessRecord, keys: ProofKeys): ProofCheck {
  const p = r.proof;
  const base = { item, recordId: r.recordId, origin: p?.origin ?? null, leafIndex: p ? Number(p.leafIndex) : null, treeSize: p ? Number(p.treeSize) : null };
  const fail = (problem: string): ProofCheck => ({ ...base, witnesses: [], ok: false, problem });
  if (!p) return fail('no proof: the record was newer than its log\'s latest checkpoint when it was saved; fetch it again');

  // 1. The leaf is the record shown.
  let leaf;
  try {
    leaf = decodeRecordLeaf(p.leaf);
  } catch (e) {
    return fail(`the proof's leaf does not decode (${(e as Error).message})`);
  }
  if (leaf.origin !== p.origin) return fail('the leaf names another log than the proof');
  if (leaf.leafIndex !== Number(p.leafIndex)) return fail('the leaf names another position than the proof');
  const f = leaf.fields;
  const shown: [string, unknown, unknown][] = [
    ['record id', r.recordId, f.recordId],
    ['requested at', ms(r.requestedAt), f.requestedAt],
    ['provided at', ms(r.providedAt), f.providedAt],
    ['requester', r.requester, f.requester],
    ['provider', r.provider, f.provider],
    ['procedure', r.procedure, f.procedure],
    ['legal basis row', r.legalBasisRow, f.legalBasisRow],
    ['item', r.item, f.item],
    ['outcome', r.outcome, f.outcome],
    ['corrected record id', r.correctsRecordId, f.correctsRecordId ?? ''],
  ];
  const differ = shown.filter(([, a, b]) => a !== b).map(([name]) => name);
  if (differ.length) return fail(`the record shown differs from its leaf in: ${differ.join(', ')} (the record or the leaf was edited)`);

  // 2. The leaf hash.
  if (!leafHash(p.leaf).equals(Buffer.from(p.leafHash))) return fail('the leaf does not hash to the proof\'s leaf hash');

  // 3. The checkpoint: signed by the log, cosigned by each witness given.
  let logVerifiers: NoteVerifier[];
  try {
    logVerifiers = keys.verifierKeys?.length
      ? keys.verifierKeys.map((k) => noteVerifierFromKey(k)).filter((v) => v.name === p.origin)
      : [...(keys.sealPublicKeys ?? new Map<string, KeyObject>()).values()].map((k) => ed25519NoteVerifier(p.origin, k));
  } catch (e) {
    return fail(`a verifier key is malformed (${(e as Error).message})`);
  }
  if (logVerifiers.length === 0) return fail(`no verifier key given for the log "${p.origin}"`);
  const witnesses = (keys.witnessKeys ?? []).map((k) => cosignatureVerifierFromKey(k));
  let opened;
  try {
    opened = openCheckpoint(p.checkpoint, logVerifiers, { origin: p.origin, others: witnesses });
  } catch (e) {
    if (e instanceof NoteError || e instanceof RangeError) return fail(`the checkpoint does not verify: ${e.message}`);
    throw e;
  }
  if (opened.checkpoint.size !== Number(p.treeSize)) return fail(`the proof is for a tree of ${p.treeSize} leaves; the checkpoint signs ${opened.checkpoint.size}`);
  const cosigned = witnesses.filter((w) => opened.note.verified.some((s) => s.name === w.name && s.keyId === w.keyId)).map((w) => w.name);
  const missing = witnesses.map((w) => w.name).filter((n) => !cosigned.includes(n));
  if (missing.length) return fail(`the checkpoint is not cosigned by the witness${missing.length > 1 ? 'es' : ''} ${missing.join(', ')}`);

  // 4. The inclusion path.
  let included: boolean;
  try {
    included = verifyInclusion(Number(p.leafIndex), Number(p.treeSize), p.leafHash, p.hashes, opened.checkpoint.rootHash);
  } catch (e) {
    return fail(`the inclusion proof is malformed (${(e as Error).message})`);
  }
  if (!included) return fail('the inclusion proof does not lead to the checkpoint\'s root');
  return { ...base, witnesses: cosigned, ok: true };
}

/** Every record of a file's text, checked. */
export function checkProofFile(text: string, keys: ProofKeys): ProofCheck[] {
  return parseRecordFile(text).map(({ item, record, error }) =>
    record ? checkRecordProof(item, record, keys) : { item, recordId: '', origin: null, leafIndex: null, treeSize: null, witnesses: [], ok: false, problem: error! },
  );
}
