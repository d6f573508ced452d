/**
 * The command logic of the transparency log for the CLI to call (the CLI only parses arguments and prints):
 * `linkgw records checkpoints`, `linkgw records verify [--against FILE] [--from FILE] [--quick]`, and what `linkgw keys show`
 * adds about the log's note keys. Each returns plain data; printing it as JSON lines is the caller's part.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fleetWitnessEntry, logVerifierKeys } from '../keys/note-keys.js';
import type { RecordStore } from './record-store.js';
import { cosignedNote } from './schema.js';
import { parseSavedCheckpoints, verifyAgainst, verifyStore, type LogProblem, type LogReport } from './verify-store.js';

/** One line of `linkgw records checkpoints`: a file of these lines is what `records verify --against` reads. */
export interface CheckpointLine {
  readonly origin: string;
  readonly size: number;
  /** The checkpoint signed by the log, with the witnesses' cosignatures. */
  readonly signedNote: string;
}

/** `linkgw records checkpoints`: the latest checkpoint of every log, cosigned by the witnesses that answered. */
export async function latestCheckpointLines(store: RecordStore): Promise<CheckpointLine[]> {
  return (await store.latestCheckpoints()).map((c) => ({ origin: c.origin, size: c.size, signedNote: cosignedNote(c) }));
}

export interface VerifyCommandResult {
  readonly reports: LogReport[];
  readonly summary: { logs: number; records: number; tampered: number; problems: number; unsigned: number; purged: number };
}

/**
 * `linkgw records verify`: every log rebuilt from its records; with `againstFile`, also against the checkpoints
 * saved in it (truncation below them is caught). `quick` checks only the saved checkpoints, by consistency
 * proofs from the stored tree, without reading the records. Exit status 1 when `summary.tampered > 0`.
 */
export async function verifyRecordsCommand(
  store: RecordStore,
  sealPublicKeys: ReadonlyMap<string, KeyObject>,
  o: {
    againstFile?: string;
    fromFile?: string;
    quick?: boolean;
    witnesses?: readonly string[];
    maxProblems?: number;
    progress?: (logId: string, done: number, total: number) => void;
  } = {},
): Promise<VerifyCommandResult> {
  const against = o.againstFile ? parseSavedCheckpoints(readFileSync(o.againstFile, 'utf8')) : undefined;
  const from = o.fromFile ? parseSavedCheckpoints(readFileSync(o.fromFile, 'utf8')) : undefined;
  if (o.quick && !against) throw new Error('records verify --quick needs --against FILE');
  if (o.quick && from) throw new Error('records verify: --quick reads no records; --from is for the full verification');
  const reports = o.quick
    ? await verifyAgainst(store, sealPublicKeys, against!)
    : await verifyStore(store, sealPublicKeys, {
        ...(against ? { against } : {}),
        ...(from ? { from } : {}),
        ...(o.witnesses ? { witnesses: o.witnesses } : {}),
        ...(o.maxProblems !== undefined ? { maxProblems: o.maxProblems } : {}),
        ...(o.progress ? { progress: o.progress } : {}),
      });
  return {
    reports,
    summary: {
      logs: reports.length,
      records: reports.reduce((n, r) => n + r.records, 0),
      tampered: reports.filter((r) => r.problem).length,
      problems: reports.reduce((n, r) => n + r.problemCount, 0),
      unsigned: reports.reduce((n, r) => n + r.unsigned, 0),
      purged: reports.reduce((n, r) => n + r.purgedBelow, 0),
    },
  };
}

/**
 * The problems of all logs, at most `max` of them in all (the order found, log by log), and how many more
 * there are: what `records verify` prints.
 */
export function limitProblems(reports: readonly LogReport[], max: number): { shown: LogProblem[]; more: number } {
  const all = reports.flatMap((r) => r.problems);
  const total = reports.reduce((n, r) => n + r.problemCount, 0);
  const shown = all.slice(0, Math.max(0, max));
  return { shown, more: total - shown.length };
}

/**
 * What `linkgw keys show` adds: the note verifier key of this replica's log for each sealing key (what
 * `note.NewVerifier` and a witness take), and the LINKGW_WITNESS_LOGS entry that covers every replica's log.
 */
export function describeLogKeys(sealPublicKeys: ReadonlyMap<string, KeyObject>, currentKeyId: string, logOrigin: string, replicaId: string): Record<string, unknown> {
  const current = sealPublicKeys.get(currentKeyId);
  const prefix = logOrigin.endsWith(`/${replicaId}`) ? logOrigin.slice(0, -replicaId.length - 1) : logOrigin;
  return {
    logOrigin,
    noteVerifierKeys: logVerifierKeys(sealPublicKeys, logOrigin),
    currentNoteVerifierKey: current ? logVerifierKeys(new Map([[currentKeyId, current]]), logOrigin)[currentKeyId] : null,
    witnessLogsEntry: current ? fleetWitnessEntry(prefix, current) : null,
  };
}
