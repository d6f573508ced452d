/**
 * The portal's state on disk (LINKGW_PORTAL_DIR/passkeys.json, mode 0600): one-time enrollment codes, kept
 * only as SHA-256 hashes with an expiry, and the registered passkeys, each bound to the disclosure agency's
 * code for its person. No personal number is ever written. The file is re-read before every change and
 * replaced atomically (write, fsync, rename), so `linkgw portal enroll` may add codes while the portal runs.
 */
import { createHash, randomInt } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredPasskey {
  /** The credential id, base64url. */
  readonly id: string;
  /** The COSE public key, base64url. */
  readonly publicKey: string;
  counter: number;
  readonly transports?: string[];
  /** The disclosure agency's code for the person. */
  readonly code: string;
  readonly created: number;
}

interface Document {
  version: 1;
  /** sha256 hex of the normalised code → expiry (ms). */
  enrollments: Record<string, number>;
  passkeys: StoredPasskey[];
}

/** Crockford base32 without I, L, O, U: read aloud and typed at a counter without confusion. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const normaliseEnrollmentCode = (s: string) => s.toUpperCase().replace(/[\s-]/g, '');
const hash = (code: string) => createHash('sha256').update(`linkgw-portal-enrollment\n${normaliseEnrollmentCode(code)}`).digest('hex');

export class EnrollmentStore {
  readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'passkeys.json');
  }

  #read(): Document {
    try {
      const d = JSON.parse(readFileSync(this.file, 'utf8')) as Document;
      if (d.version !== 1 || typeof d.enrollments !== 'object' || !Array.isArray(d.passkeys)) throw new Error(`${this.file}: not a portal state file`);
      return d;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, enrollments: {}, passkeys: [] };
      throw e;
    }
  }

  #write(d: Document): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(d, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }

  /** A new one-time code, valid for `validMs` (15 characters of 32 symbols: 75 bits), shown as XXXXX-XXXXX-XXXXX. */
  issueEnrollmentCode(validMs: number, now = Date.now()): { code: string; expires: number } {
    const raw = Array.from({ length: 15 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const d = this.#read();
    for (const [h, exp] of Object.entries(d.enrollments)) if (exp <= now) delete d.enrollments[h];
    d.enrollments[hash(raw)] = now + validMs;
    this.#write(d);
    return { code: `${raw.slice(0, 5)}-${raw.slice(5, 10)}-${raw.slice(10)}`, expires: now + validMs };
  }

  /** Whether the code is issued, unused and unexpired (not consumed). */
  isValidEnrollmentCode(code: string, now = Date.now()): boolean {
    const exp = this.#read().enrollments[hash(code)];
    return exp !== undefined && exp > now;
  }

  /** Consumes the code and stores the passkey, in one write; false when the code is no longer valid. */
  register(code: string, passkey: StoredPasskey, now = Date.now()): boolean {
    const d = this.#read();
    const h = hash(code);
    const exp = d.enrollments[h];
    if (exp === undefined || exp <= now) return false;
    delete d.enrollments[h];
    d.passkeys.push(passkey);
    this.#write(d);
    return true;
  }

  passkey(id: string): StoredPasskey | undefined {
    return this.#read().passkeys.find((p) => p.id === id);
  }

  updateCounter(id: string, counter: number): void {
    const d = this.#read();
    const p = d.passkeys.find((x) => x.id === id);
    if (p && counter > p.counter) {
      p.counter = counter;
      this.#write(d);
    }
  }
}
