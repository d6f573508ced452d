/**
 * Which logs a witness cosigns, and with which keys their checkpoints must be signed. An entry is either a
 * log's note verifier key (`origin+keyid+base64`, one log) or `ORIGIN_PREFIX*=BASE64` (every log whose origin
 * starts with the prefix, signed by that Ed25519 key as `0x01 ‖ key` or the bare 32 bytes): a fleet's
 * replicas each have their own log, and new ones appear as replicas are added.
 */
import { ed25519NoteVerifier, noteVerifierFromKey, NoteError, type NoteVerifier } from '../core/signed-note.js';

export interface WitnessedLogs {
  /** The verifiers of a log's checkpoints, or null when the witness does not cosign that log. */
  verifiersFor(origin: string): NoteVerifier[] | null;
}

export function parseWitnessedLogs(entries: readonly string[]): WitnessedLogs {
  const exact = new Map<string, NoteVerifier[]>();
  const prefixes: { prefix: string; key: Buffer }[] = [];
  for (const e of entries) {
    const star = /^([^\s=]+)\*=([A-Za-z0-9+/]+={0,2})$/.exec(e);
    if (star) {
      const raw = Buffer.from(star[2]!, 'base64');
      const key = raw.length === 33 && raw[0] === 0x01 ? raw.subarray(1) : raw;
      if (key.length !== 32) throw new NoteError(`witnessed log "${e}": the key is 32 bytes of Ed25519 (or 0x01 and those)`);
      prefixes.push({ prefix: star[1]!, key });
      continue;
    }
    const v = noteVerifierFromKey(e);
    let l = exact.get(v.name);
    if (!l) exact.set(v.name, (l = []));
    l.push(v);
  }
  return {
    verifiersFor(origin) {
      const out = [...(exact.get(origin) ?? [])];
      for (const p of prefixes) if (origin.startsWith(p.prefix) && origin.length > p.prefix.length) out.push(ed25519NoteVerifier(origin, p.key));
      return out.length ? out : null;
    },
  };
}
