/**
 * The command logic of the transparency log for the CLI to call (the CLI only parses arguments and prints):
 * `linkgw records checkpoints`, `linkgw records verify [--against FILE] [--quick]`, and what `linkgw keys show`
 * adds about the log's note keys. Each returns plain data; printing it as JSON lines is the caller's part.
 */
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fleetWitnessEntry, logVerifierKeys } from '../keys/note-keys.js';
import type { RecordStore } from './record-store.js';
import { cosignedNote } from './schema.js';
import { parseSavedCheckpoints, verifyAgainst, verifyStore, type LogReport } from './verify-store.js';

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
  readonly summary: { logs: number; records: number; tampered: number; unsigned: number };
}

/**
 * `linkgw records verify`: every log rebuilt from its records; with `againstFile`, also against the checkpoints
 * saved in it (truncation below them is caught). `quick` checks only the saved checkpoints, by consistency
 * proofs from the stored tree, without reading the records. Exit status 1 when `summary.tampered > 0`.
 */
export async function verifyRecordsCommand(
  store: RecordStore,
  sealPublicKeys: ReadonlyMap<string, KeyObject>,
  o: { againstFile?: string; quick?: boolean; witnesses?: readonly string[]; progress?: (logId: string, done: number, total: number) => void } = {},
): Promise<VerifyCommandResult> {
  const against = o.againstFile ? parseSavedCheckpoints(readFileSync(o.againstFile, 'utf8')) : undefined;
  if (o.quick && !against) throw new Error('records verify --quick needs --against FILE');
  const reports = o.quick
    ? await verifyAgainst(store, sealPublicKeys, against!)
    : await verifyStore(store, sealPublicKeys, { ...(against ? { against } : {}), ...(o.witnesses ? { witnesses: o.witnesses } : {}), ...(o.progress ? { progress: o.progress } : {}) });
  return {
    reports,
    summary: {
      logs: reports.length,
      records: reports.reduce((n, r) => n + r.records, 0),
      tampered: reports.filter((r) => r.problem).length,
      unsigned: reports.reduce((n, r) => n + r.unsigned, 0),
    },
  };
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
