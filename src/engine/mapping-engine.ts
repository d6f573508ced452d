/**
 * The mapping engine: where codes are derived, checked and converted. Handlers call only this interface; the
 * inline engine runs the codec on the event loop, the pooled engine (pooled-engine.ts) on worker threads in
 * batches. Both give identical codes for the same keyring.
 */
import { AgencyCodec, type Decoded, type MasterKeys } from '../core/agency-code.js';
import { SubjectKeys } from '../core/subject-key.js';
import { issueBulkBatch, type BulkIssued, type BulkTask } from './bulk-batch.js';

/** An engine's keys: the master keys, and the subject secret for engines that issue whole bulk messages. */
export interface EngineKeys extends MasterKeys {
  readonly subjectSecret?: Uint8Array;
}

export interface MappingEngine {
  readonly kind: 'inline' | 'pool' | 'auto';
  /** Codes of `agency` for valid personal numbers (as integers), in order. */
  issue(agency: string, numbers: readonly number[], signal?: AbortSignal): Promise<string[]>;
  /** Decodes codes of `agency`; each result says whether its code was authentic. */
  decode(agency: string, codes: readonly string[], signal?: AbortSignal): Promise<Decoded[]>;
  /**
   * One bulk issuance message whole (bulk-batch.ts): check digits, codes, the record's persons run and its
   * commitment, and the encoded response, with no per-item objects on the caller's thread. Present when the
   * engine was built with the subject secret; without it a service issues through `issue`.
   */
  readonly issueBulk?: (task: BulkTask, signal?: AbortSignal) => Promise<BulkIssued>;
  close(): Promise<void>;
}

export class InlineEngine implements MappingEngine {
  readonly kind = 'inline' as const;
  readonly #codec: AgencyCodec;
  readonly issueBulk?: (task: BulkTask) => Promise<BulkIssued>;

  constructor(keys: EngineKeys) {
    this.#codec = new AgencyCodec(keys);
    if (keys.subjectSecret) {
      const subjects = new SubjectKeys(keys.subjectSecret);
      this.issueBulk = async (task) => issueBulkBatch(this.#codec, subjects, task);
    }
  }

  async issue(agency: string, numbers: readonly number[]): Promise<string[]> {
    return this.#codec.encodeMany(agency, numbers);
  }

  async decode(agency: string, codes: readonly string[]): Promise<Decoded[]> {
    return this.#codec.decodeMany(agency, codes);
  }

  async close(): Promise<void> {}
}
