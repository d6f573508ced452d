/**
 * The mapping engine: where codes are derived, checked and converted. Handlers call only this interface; the
 * inline engine runs the codec on the event loop, the pooled engine (pooled-engine.ts) on worker threads in
 * batches. Both give identical codes for the same keyring.
 */
import { AgencyCodec, type Decoded, type MasterKeys } from '../core/agency-code.js';

export interface MappingEngine {
  readonly kind: 'inline' | 'pool' | 'auto';
  /** Codes of `agency` for valid personal numbers (as integers), in order. */
  issue(agency: string, numbers: readonly number[], signal?: AbortSignal): Promise<string[]>;
  /** Decodes codes of `agency`; each result says whether its code was authentic. */
  decode(agency: string, codes: readonly string[], signal?: AbortSignal): Promise<Decoded[]>;
  close(): Promise<void>;
}

export class InlineEngine implements MappingEngine {
  readonly kind = 'inline' as const;
  readonly #codec: AgencyCodec;

  constructor(keys: MasterKeys) {
    this.#codec = new AgencyCodec(keys);
  }

  async issue(agency: string, numbers: readonly number[]): Promise<string[]> {
    return this.#codec.encodeMany(agency, numbers);
  }

  async decode(agency: string, codes: readonly string[]): Promise<Decoded[]> {
    return this.#codec.decodeMany(agency, codes);
  }

  async close(): Promise<void> {}
}
