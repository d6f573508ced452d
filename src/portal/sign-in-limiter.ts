/**
 * Sign-in attempts, rate-limited per client address and in total: a fixed budget per window (a sliding log of
 * attempt times), so guessing numbers or enrollment codes is slow whatever the attacker does. A refusal says
 * when to try again (429 with Retry-After).
 */
export class SignInLimiter {
  readonly #attempts = new Map<string, number[]>();
  #all: number[] = [];

  constructor(private readonly o: { perClient: number; total: number; windowMs: number; now?: () => number }) {}

  /** Takes one attempt for `client`; returns 0 when allowed, else the milliseconds to wait. */
  take(client: string): number {
    const now = (this.o.now ?? Date.now)();
    const since = now - this.o.windowMs;
    const mine = (this.#attempts.get(client) ?? []).filter((t) => t > since);
    this.#all = this.#all.filter((t) => t > since);
    const wait = (log: number[], max: number) => (log.length >= max ? log[log.length - max]! + this.o.windowMs - now : 0);
    const w = Math.max(wait(mine, this.o.perClient), wait(this.#all, this.o.total));
    if (w > 0) {
      this.#attempts.set(client, mine);
      return w;
    }
    mine.push(now);
    this.#all.push(now);
    this.#attempts.set(client, mine);
    if (this.#attempts.size > 10_000) for (const [k, v] of this.#attempts) if (!v.some((t) => t > since)) this.#attempts.delete(k);
    return 0;
  }
}
