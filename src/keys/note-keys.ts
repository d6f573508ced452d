/**
 * The public keys verifiers are given, in the note formats: for `linkgw keys show`, for a witness's
 * LINKGW_WITNESS_LOGS, and for anyone who checks checkpoints with `golang.org/x/mod/sumdb/note`.
 */
import type { KeyObject } from 'node:crypto';
import { rawEd25519, SIG_ED25519, verifierKey } from '../core/signed-note.js';

/** The note verifier key of the log `origin` for each sealing key (the current one signs; old ones verify). */
export function logVerifierKeys(sealPublicKeys: ReadonlyMap<string, KeyObject>, origin: string): Record<string, string> {
  return Object.fromEntries([...sealPublicKeys].map(([id, k]) => [id, verifierKey(origin, SIG_ED25519, rawEd25519(k))]));
}

/**
 * A witness entry for every replica's log at once (`LINKGW_WITNESS_LOGS`): replicas come and go, each with its
 * own origin under the prefix, all signing with the fleet's sealing key.
 */
export function fleetWitnessEntry(originPrefix: string, publicKey: KeyObject): string {
  return `${originPrefix.replace(/\/+$/, '')}/*=${Buffer.concat([Buffer.from([SIG_ED25519]), rawEd25519(publicKey)]).toString('base64')}`;
}
