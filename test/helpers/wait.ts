/** Waiting for a condition in tests, with a bound. */

/** Polls `cond` every 10 ms until it holds, failing after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}
