/**
 * Shutdown runs every step even when one fails: the record writer still drains and the store still closes,
 * and the failure is reported instead of swallowed.
 */
import { describe, expect, it } from 'vitest';
import { InlineEngine, type MappingEngine } from '../../src/engine/mapping-engine.js';
import { startHarness } from '../helpers/gateway-harness.js';
import { population } from '../helpers/population.js';

describe('gateway shutdown', () => {
  it('closes the writer and the store after a step that fails, then reports the failure', async () => {
    const h = await startHarness({
      engine: (keyring): MappingEngine => {
        const inner = new InlineEngine(keyring);
        return {
          kind: inner.kind,
          issue: (a, n) => inner.issue(a, n),
          decode: (a, c) => inner.decode(a, c),
          close: async () => {
            throw new Error('engine would not close');
          },
        };
      },
    });
    const { recordId } = await h.client('pension').issueCode(population(1, 5)[0]!);
    expect(recordId).not.toBe('');
    await expect(h.gw.stop()).rejects.toThrow('engine would not close');
    // Steps after the failing one ran: the writer is closed and so is the store.
    await expect(h.gw.writer.append({} as never)).rejects.toThrow(/shutting down/);
    await expect(h.gw.store.logs()).rejects.toThrow();
    await h.stop().catch(() => undefined);
  });
});
