/**
 * Pacing for bulk issuance: LINKGW_RATE_LIMIT_BULK counts personal numbers, not messages, so one stream of
 * 10,000-number messages cannot issue codes faster than the agency's bulk rate. A message over the rate is not
 * failed: it waits until the bucket has room (HTTP/2 flow control then slows the sender), or until the call
 * ends.
 */
import { GatewayError } from '../core/errors.js';
import { notify } from '../core/observer.js';
import type { RateLimiter } from './rate-limiter.js';

export interface PacingObserver {
  /** A bulk message of `agency` waited `seconds` for the bulk rate. */
  paced(agency: string, seconds: number): void;
}

export class Pacer {
  constructor(
    private readonly limiter: Pick<RateLimiter, 'take' | 'limitFor'>,
    private readonly observer?: PacingObserver,
  ) {}

  /** Resolves when `agency` may go on with `count` items; rejects only when `signal` aborts. */
  async pace(agency: string, count: number, signal: AbortSignal): Promise<void> {
    if (count <= 0) return;
    // A message larger than the burst is taken in bursts, so it waits for its share instead of never passing.
    const burst = Math.max(1, Math.floor(this.limiter.limitFor(agency).burst));
    let left = count;
    let waited = 0;
    while (left > 0) {
      const step = Math.min(left, burst);
      const d = await this.limiter.take(agency, step);
      if (d.allowed) {
        left -= step;
        continue;
      }
      const ms = Number.isFinite(d.retryAfterMs) ? Math.max(1, d.retryAfterMs) : 100;
      waited += ms;
      await sleep(ms, signal);
    }
    if (waited > 0) notify(this.observer, (o) => o.paced(agency, waited / 1000));
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const gone = () => reject(signal.reason instanceof GatewayError ? signal.reason : new GatewayError('CANCELLED', 'the call was cancelled'));
    if (signal.aborted) return gone();
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      gone();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
