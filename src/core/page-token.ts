/**
 * Page tokens of ListAccessRecords: where a listing goes on (the position of the last record of a page),
 * authenticated, and bound to the listing it came from: the calling agency and the person listed.
 *
 *   token = base64url( 0x01 ‖ requested_at (8 bytes) ‖ leaf_index (8 bytes) ‖ len(log_id) ‖ log_id ‖ tag )
 *   tag   = HMAC-SHA256(K, body ‖ len ':' agency ‖ len ':' subject)[0..16],  K = deriveKey(subject secret, 'page-token')
 *
 * An edited token (a changed time, leaf or log, a byte flipped, a token made up) does not open, nor does a token
 * of another agency's or another person's listing: the caller learns only that it is not a token of this
 * listing. 128 bits of tag: a forgery is guessing. The position is not secret (it is the caller's own record's
 * time and leaf), so it is authenticated, not encrypted. The key is derived from the subject secret, which every
 * replica holds, so a token from one replica opens on another; it does not change with code-key rotations.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deriveKey } from './key-derivation.js';

/** Where a listing goes on: the last record of the page before (the order is requested_at, log, leaf). */
export interface PagePosition {
  readonly requestedAt: number;
  readonly leafIndex: number;
  readonly logId: string;
}

/** The listing a token belongs to. */
export interface Listing {
  readonly agency: string;
  readonly subject: string;
}

const FORMAT = 0x01;
const TAG = 16;
const LOG_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** The longest token: 1 + 8 + 8 + 1 + 64 + 16 bytes, in base64url. */
const MAX_TOKEN_CHARS = Math.ceil(((1 + 8 + 8 + 1 + 64 + TAG) * 4) / 3);

export class PageTokens {
  readonly #key: Buffer;

  constructor(secret: Uint8Array) {
    if (secret.length < 32) throw new RangeError('the page token secret must be at least 32 bytes');
    this.#key = deriveKey(secret, 'page-token');
  }

  issue(p: PagePosition, listing: Listing): string {
    const log = Buffer.from(p.logId, 'utf8');
    const body = Buffer.allocUnsafe(1 + 8 + 8 + 1 + log.length + TAG);
    body[0] = FORMAT;
    writeU64(body, 1, p.requestedAt);
    writeU64(body, 9, p.leafIndex);
    body[17] = log.length;
    log.copy(body, 18);
    const end = 18 + log.length;
    this.#tag(body.subarray(0, end), listing).copy(body, end, 0, TAG);
    return body.toString('base64url');
  }

  /** The position, or null for anything that is not a token this gateway issued for this listing. */
  open(token: string, listing: Listing): PagePosition | null {
    if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) return null;
    const b = Buffer.from(token, 'base64url');
    if (b.length < 18 + 1 + TAG || b[0] !== FORMAT || b.length !== 18 + b[17]! + TAG) return null;
    const end = b.length - TAG;
    if (!timingSafeEqual(this.#tag(b.subarray(0, end), listing).subarray(0, TAG), b.subarray(end))) return null;
    const logId = b.toString('utf8', 18, end);
    const requestedAt = readU64(b, 1);
    const leafIndex = readU64(b, 9);
    if (!LOG_ID.test(logId) || requestedAt === null || leafIndex === null) return null;
    return { requestedAt, leafIndex, logId };
  }

  #tag(body: Buffer, l: Listing): Buffer {
    return createHmac('sha256', this.#key).update(body).update(`${l.agency.length}:${l.agency}${l.subject.length}:${l.subject}`, 'utf8').digest();
  }
}

function writeU64(b: Buffer, at: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('a page position is a whole number');
  b.writeUInt32BE(Math.floor(v / 2 ** 32), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

function readU64(b: Buffer, at: number): number | null {
  const v = b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4);
  return Number.isSafeInteger(v) ? v : null;
}
