/**
 * Signed-in sessions, in memory: a random id (the cookie) names the disclosure agency's code for the person
 * and the session's CSRF token. The code never leaves the portal: the browser holds only the id. Sessions end
 * at sign-out, after `idleMs` without a request, and after `maxMs` whatever happens; a restart signs everyone
 * out (the portal keeps no personal data on disk).
 */
import { randomBytes } from 'node:crypto';

export interface Session {
  readonly id: string;
  /** The disclosure agency's code for the signed-in person. */
  readonly code: string;
  readonly csrf: string;
  readonly created: number;
  lastSeen: number;
  /** Record ids listed to this session: the only ones whose proof it may ask for again. */
  readonly listed: Set<string>;
}

export const newToken = () => randomBytes(32).toString('base64url');

export class Sessions {
  readonly #byId = new Map<string, Session>();

  constructor(private readonly o: { idleMs: number; maxMs: number; now?: () => number } = { idleMs: 15 * 60_000, maxMs: 8 * 3600_000 }) {}

  #now(): number {
    return (this.o.now ?? Date.now)();
  }

  create(code: string): Session {
    this.#sweep();
    const now = this.#now();
    const s: Session = { id: newToken(), code, csrf: newToken(), created: now, lastSeen: now, listed: new Set() };
    this.#byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    const now = this.#now();
    if (now - s.lastSeen > this.o.idleMs || now - s.created > this.o.maxMs) {
      this.#byId.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  end(id: string | undefined): void {
    if (id) this.#byId.delete(id);
  }

  get size(): number {
    return this.#byId.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, s] of this.#byId) if (now - s.lastSeen > this.o.idleMs || now - s.created > this.o.maxMs) this.#byId.delete(id);
  }
}
