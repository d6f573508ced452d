/**
 * `linkgw witness`: runs a witness from its settings: its key and state in LINKGW_WITNESS_DIR, the logs of
 * LINKGW_WITNESS_LOGS, HTTP on LINKGW_WITNESS_LISTEN. The CLI calls this and prints what it returns.
 */
import { join } from 'node:path';
import type { WitnessSettings } from '../config/settings.js';
import { loadOrCreateWitnessKey } from '../keys/witness-key-file.js';
import type { Logger } from '../log/logger.js';
import { Witness } from './witness.js';
import { parseWitnessedLogs } from './witnessed-logs.js';
import { startWitnessServer } from './witness-server.js';
import { WitnessState } from './witness-state.js';

export interface RunningWitness {
  /** The submission and monitoring prefix (for a log's LINKGW_WITNESSES). */
  readonly url: string;
  /** The cosignature verifier key (type 0x04). */
  readonly verifierKey: string;
  /** `VKEY=URL`: the entry a gateway's LINKGW_WITNESSES takes. */
  readonly gatewayEntry: string;
  close(): Promise<void>;
}

export async function startWitness(s: WitnessSettings, log: Logger): Promise<RunningWitness> {
  const { signer, created } = loadOrCreateWitnessKey(join(s.dir, 'witness-key.pem'));
  if (created) log.info('created a new witness key', { file: join(s.dir, 'witness-key.pem') });
  const witness = new Witness({ name: s.name, signer, logs: parseWitnessedLogs(s.logs), state: WitnessState.load(join(s.dir, 'witness-state.json')), log });
  const server = await startWitnessServer(witness, s.listen, log);
  log.info('witness serving', { url: server.url, key: witness.verifierKey });
  return { url: server.url, verifierKey: witness.verifierKey, gatewayEntry: `${witness.verifierKey}=${server.url}`, close: () => server.close() };
}
