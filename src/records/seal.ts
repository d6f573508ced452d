/**
 * `linkgw records seal`: signs the unsigned tail of a log whose writer is gone.
 *
 * A gateway signs a checkpoint at most every LINKGW_CHECKPOINT_INTERVAL_MS and signs the last records when it
 * closes; a process that is killed (SIGKILL, OOM, a node lost) leaves its newest records committed but not
 * signed, and only a process that takes that log's writer lock again can sign them. With a stable replica id
 * (the StatefulSet's pod name) the restarted pod does it; for a replica that does not come back (scaled down,
 * renamed) this command does.
 *
 * It does exactly what a writer does at open and close: it takes the log's writer lock (so it can never run
 * beside a live writer of that log), checks that the stored tail still extends the last checkpoint, and signs a
 * checkpoint of the whole tree. The sealing is a RecordWriter opened on that log and closed, so there is no
 * second implementation of resuming or signing.
 */
import { LogDamagedError, RecordWriter } from './record-writer.js';
import { LOG_LOCKED, type RecordStore } from './record-store.js';
import type { Signer } from '../keys/signer.js';
import type { Logger } from '../log/logger.js';

export interface SealResult {
  readonly logId: string;
  readonly origin: string;
  readonly size: number;
  /** Leaves covered by the latest checkpoint before sealing. */
  readonly signedBefore: number;
  /** Leaves covered by the latest checkpoint after sealing (= size when sealed). */
  readonly signedAfter: number;
  /**
   * `sealed`: a checkpoint now covers the whole log; `signed already`: nothing to do; `writer running`: another
   * process holds the log's writer lock (a live gateway signs its own tail); `refused: …`: the log does not
   * extend its last checkpoint (run `records verify`).
   */
  readonly result: 'sealed' | 'signed already' | 'writer running' | `refused: ${string}`;
}

export interface SealOptions {
  /** Only this log (an error when the store has no such log); default every log with an unsigned tail. */
  readonly logId?: string;
  /** How long to wait for a log's writer lock, ms (default 0: a log being written is skipped at once). */
  readonly waitMs?: number;
}

export async function sealLogs(store: RecordStore, signer: Signer, log: Logger, o: SealOptions = {}): Promise<SealResult[]> {
  const logs = await store.logs();
  const chosen = o.logId === undefined ? logs : logs.filter((l) => l.logId === o.logId);
  if (o.logId !== undefined && chosen.length === 0) throw new Error(`the record store has no log "${o.logId}"`);
  const signedSize = async (logId: string) => (await store.latestCheckpoints()).find((c) => c.logId === logId)?.size ?? 0;
  const results: SealResult[] = [];
  for (const info of chosen) {
    const before = await signedSize(info.logId);
    const base = { logId: info.logId, origin: info.origin, signedBefore: before };
    if (info.size <= before) {
      results.push({ ...base, size: info.size, signedAfter: before, result: 'signed already' });
      continue;
    }
    try {
      // The lock first, with our own wait: RecordWriter.open then finds it held by this store.
      await store.claimLog(info.logId, info.origin, { waitMs: o.waitMs ?? 0 });
    } catch (e) {
      if ((e as { code?: unknown }).code !== LOG_LOCKED) throw e;
      results.push({ ...base, size: info.size, signedAfter: before, result: 'writer running' });
      continue;
    }
    // A checkpoint is signed at once at close, whatever the interval; the writer takes no records.
    const writer = new RecordWriter({ store, signer, log, logId: info.logId, origin: info.origin });
    try {
      await writer.open();
    } catch (e) {
      if (e instanceof LogDamagedError) {
        results.push({ ...base, size: info.size, signedAfter: before, result: `refused: ${e.message}` });
        await writer.close();
        continue;
      }
      throw e;
    }
    const size = writer.size;
    await writer.close();
    const after = await signedSize(info.logId);
    if (after < size) throw new Error(`log ${info.logId}: the checkpoint of ${size} leaves was not stored (the latest covers ${after}); see the log lines above`);
    log.info('log sealed: its unsigned tail is signed', { log: info.logId, size, signedBefore: before });
    results.push({ ...base, size, signedAfter: after, result: 'sealed' });
  }
  return results;
}
