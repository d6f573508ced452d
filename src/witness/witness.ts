/**
 * A witness in the manner of C2SP tlog-witness: given a log's new checkpoint, the size it last cosigned for
 * that log and a consistency proof from there, it checks the log's signature, checks that the new tree extends
 * the one it cosigned, remembers the new one durably, and returns its cosignature (cosignature/v1). It refuses
 * a fork (another root for a size it has seen, or a proof that does not lead to its root) and a rollback (a
 * checkpoint smaller than the one it cosigned). Status codes are those of the specification.
 *
 * Requests are handled one at a time, so the check of the old size and the update of the state are atomic
 * (the race the specification describes, a rollback by two interleaved requests, cannot happen).
 */
import { createHash } from 'node:crypto';
import { openCheckpoint, parseCheckpointText } from '../core/checkpoint.js';
import { cosign, cosignerVerifierKey } from '../core/cosignature.js';
import { checkConsistency, EMPTY_ROOT, ProofError } from '../core/merkle.js';
import { decodeNoteBytes, NoteError, parseNote, type Ed25519Signing } from '../core/signed-note.js';
import type { Logger } from '../log/logger.js';
import type { WitnessedLogs } from './witnessed-logs.js';
import type { WitnessState } from './witness-state.js';

export interface WitnessAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

const text = (status: number, body: string, contentType = 'text/plain; charset=utf-8'): WitnessAnswer => ({ status, body: body.endsWith('\n') ? body : `${body}\n`, contentType });
const MAX_PROOF_LINES = 63;

/** The monitoring path of a log: the lower-case hex SHA-256 of its origin. */
export function originHash(origin: string): string {
  return createHash('sha256').update(origin, 'utf8').digest('hex');
}

export class Witness {
  readonly name: string;
  readonly #signer: Ed25519Signing;
  readonly #logs: WitnessedLogs;
  readonly #state: WitnessState;
  readonly #log: Logger;
  readonly #now: () => number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: { name: string; signer: Ed25519Signing; logs: WitnessedLogs; state: WitnessState; log: Logger; now?: () => number }) {
    this.name = o.name;
    this.#signer = o.signer;
    this.#logs = o.logs;
    this.#state = o.state;
    this.#log = o.log;
    this.#now = o.now ?? Date.now;
  }

  /** The witness's cosignature verifier key (type 0x04), for the logs' LINKGW_WITNESSES and for clients. */
  get verifierKey(): string {
    return cosignerVerifierKey(this.name, this.#signer.publicKey);
  }

  /** `POST add-checkpoint`, one request at a time. */
  addCheckpoint(body: Uint8Array): Promise<WitnessAnswer> {
    const run = this.#queue.then(() => this.#add(body));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** `GET <origin hash>/checkpoint`: the latest checkpoint cosigned for that log, or null. */
  latestCosigned(hash: string): string | null {
    for (const origin of this.#state.origins()) if (originHash(origin) === hash) return this.#state.get(origin)!.cosigned;
    return null;
  }

  async #add(body: Uint8Array): Promise<WitnessAnswer> {
    let msg: string;
    try {
      msg = decodeNoteBytes(body);
    } catch {
      return text(400, 'the request is not UTF-8');
    }
    const header = /^old (0|[1-9][0-9]{0,15})\n/.exec(msg);
    if (!header) return text(400, 'the request starts with an old size line');
    const oldSize = Number(header[1]);
    const lines = msg.slice(header[0].length).split('\n');
    const proof: Buffer[] = [];
    let i = 0;
    for (; i < lines.length && lines[i] !== ''; i++) {
      const b = Buffer.from(lines[i]!, 'base64');
      if (b.length !== 32 || b.toString('base64') !== lines[i]) return text(400, 'a consistency proof line is the base64 of 32 bytes');
      proof.push(b);
    }
    if (i >= lines.length) return text(400, 'no empty line before the checkpoint');
    if (proof.length > MAX_PROOF_LINES) return text(400, `at most ${MAX_PROOF_LINES} consistency proof lines`);
    const note = lines.slice(i + 1).join('\n');
    let origin: string;
    let noteText: string;
    try {
      noteText = parseNote(note).text;
      origin = parseCheckpointText(noteText).origin;
    } catch (e) {
      return text(400, `not a checkpoint: ${(e as Error).message}`);
    }
    const verifiers = this.#logs.verifiersFor(origin);
    if (!verifiers) return text(404, 'this witness does not witness that log');
    let checkpoint;
    let logLines: string;
    try {
      const opened = openCheckpoint(note, verifiers, { origin });
      checkpoint = opened.checkpoint;
      logLines = opened.note.verified.map((s) => s.line).join('');
    } catch (e) {
      if (!(e instanceof NoteError)) throw e;
      return text(403, `the checkpoint is not validly signed by the log: ${e.message}`);
    }
    if (oldSize > checkpoint.size) {
      this.#log.warn('witness: refused a checkpoint smaller than the old size it names', { origin, old: oldSize, size: checkpoint.size });
      return text(400, 'the old size is larger than the checkpoint');
    }
    const known = this.#state.get(origin);
    const knownSize = known?.size ?? 0;
    if (oldSize !== knownSize) return text(409, `${knownSize}`, 'text/x.tlog.size');
    if (checkpoint.size === 0 && !checkpoint.rootHash.equals(EMPTY_ROOT)) return text(422, 'an empty tree has the root of nothing');
    try {
      if (oldSize === 0) {
        if (proof.length) throw new ProofError('a proof from the empty tree must be empty');
      } else {
        checkConsistency(oldSize, checkpoint.size, proof, known!.rootHash, checkpoint.rootHash);
      }
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      // A validly signed checkpoint inconsistent with one the log signed before: evidence of a fork.
      this.#log.warn('witness: refused an inconsistent checkpoint (a fork or a rewritten log)', { origin, old: oldSize, size: checkpoint.size, reason: e.message });
      return text(422, `inconsistent with the checkpoint of ${oldSize} leaves this witness cosigned: ${e.message}`);
    }
    // Timestamps never go back for a log, even if the clock does.
    const now = Math.max(Math.floor(this.#now() / 1000), Math.floor((known?.updatedAt ?? 0) / 1000));
    const line = await cosign(noteText, this.name, this.#signer, now);
    // Served to monitors: the log's signatures this witness verified, and its own.
    this.#state.set(origin, { size: checkpoint.size, rootHash: checkpoint.rootHash, cosigned: `${noteText}\n${logLines}${line}`, updatedAt: now * 1000 });
    return text(200, line, 'text/plain; charset=utf-8');
  }
}
