/**
 * The gateway's lifetime stack: every tier the composition root builds registers how to close itself, and
 * closing runs those steps in reverse order of construction (the server stops taking calls before the writer
 * drains, the writer drains before the store closes). Every step runs even when one before it fails; the first
 * failure is thrown at the end.
 */
import type { Logger } from './log/logger.js';

export class Lifetime {
  readonly #steps: { name: string; close: () => unknown }[] = [];

  constructor(private readonly log: Logger) {}

  /** Registers `close` for `value` and returns the value, so a builder reads `return life.own(...)`. */
  own<T>(name: string, value: T, close: (v: T) => unknown): T {
    this.#steps.push({ name, close: () => close(value) });
    return value;
  }

  /** Registers a step with no value of its own. */
  defer(name: string, close: () => unknown): void {
    this.#steps.push({ name, close });
  }

  async close(): Promise<void> {
    let first: unknown;
    for (const s of this.#steps.splice(0).reverse()) {
      try {
        await s.close();
      } catch (e) {
        first ??= e;
        this.log.error('shutdown step failed', { step: s.name, err: e });
      }
    }
    if (first !== undefined) throw first;
  }
}
