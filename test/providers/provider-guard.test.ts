/**
 * Each provider's budget and breaker (src/providers/provider-guard.ts) over a fake provider whose calls the test
 * settles by hand, on an injected clock: no server, no waiting.
 */
import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { RefusalReason } from '../../src/limits/refusals.js';
import { GuardedProviders } from '../../src/providers/provider-guard.js';
import type { ProvideCall, ProvideResult, Providers } from '../../src/service/ports.js';

const PROVIDED: ProvideResult = { kind: 'provided', payload: new Uint8Array(), contentType: 'application/json' };
const UNREACHABLE: ProvideResult = { kind: 'failed', code: 'UNAVAILABLE', grpcStatus: status.UNAVAILABLE };
const TIMED_OUT: ProvideResult = { kind: 'failed', code: 'DEADLINE_EXCEEDED', grpcStatus: status.DEADLINE_EXCEEDED };

/** A provider whose calls stay pending until the test settles them. */
class HeldProviders implements Providers {
  readonly pending: { call: ProvideCall; settle: (r: ProvideResult) => void }[] = [];
  provide(call: ProvideCall): Promise<ProvideResult> {
    return new Promise((settle) => this.pending.push({ call, settle }));
  }
  /** Settles the oldest pending call to `provider`. */
  settle(provider: string, r: ProvideResult): void {
    const i = this.pending.findIndex((p) => p.call.provider === provider);
    if (i < 0) throw new Error(`no pending call to ${provider}`);
    this.pending.splice(i, 1)[0]!.settle(r);
  }
}

function setup(o: { max?: number; threshold?: number; openMs?: number; fairWaitMs?: number } = {}) {
  let now = 1_000_000;
  const inner = new HeldProviders();
  const refusals: RefusalReason[] = [];
  const guard = new GuardedProviders(inner, {
    maxInFlight: o.max ?? 2,
    failureThreshold: o.threshold ?? 2,
    openMs: o.openMs ?? 1000,
    fairWaitMs: o.fairWaitMs ?? 500,
    clock: () => now,
    random: () => 0,
    observer: { refused: (r) => refusals.push(r) },
  });
  const call = (provider: string, signal?: AbortSignal): ProvideCall => ({
    provider,
    address: '127.0.0.1:1',
    peer: { commonName: provider },
    code: 'C',
    requester: 'welfare',
    procedure: 'p',
    item: 'i',
    recordId: 'R',
    legalBasisRow: 'B',
    deadline: now + 5000,
    ...(signal ? { signal } : {}),
  });
  return { guard, inner, refusals, call, advance: (ms: number) => (now += ms) };
}

describe('a provider budget', () => {
  it('refuses calls past the budget at once, for that provider only, and frees the slot when a call ends', async () => {
    const { guard, inner, refusals, call } = setup({ max: 2 });
    const a = guard.provide(call('tax'));
    const b = guard.provide(call('tax'));
    expect(await guard.provide(call('tax'))).toEqual({ kind: 'refused', reason: 'busy', retryAfterMs: 100, grpcStatus: status.RESOURCE_EXHAUSTED });
    expect(refusals).toEqual(['provider_busy']);
    expect(guard.inFlight('tax')).toBe(2);
    // Another provider has its own budget.
    const c = guard.provide(call('pension'));
    expect(guard.inFlight('pension')).toBe(1);
    inner.settle('tax', PROVIDED);
    inner.settle('pension', PROVIDED);
    await Promise.all([a, c]);
    expect(guard.inFlight('tax')).toBe(1);
    const d = guard.provide(call('tax'));
    expect(guard.inFlight('tax')).toBe(2);
    inner.settle('tax', PROVIDED);
    inner.settle('tax', PROVIDED);
    await Promise.all([b, d]);
    expect(guard.inFlight('tax')).toBe(0);
  });
});

describe('retry-after-ms of a refusal', () => {
  it('is spread at random over up to as much again (or half the cool-down), so refused requesters do not return together', async () => {
    let r = 0.999;
    const inner = new HeldProviders();
    const guard = new GuardedProviders(inner, { maxInFlight: 1, failureThreshold: 1, openMs: 1000, fairWaitMs: 0, clock: () => 0, random: () => r });
    const base: ProvideCall = { provider: 'tax', address: 'a:1', peer: { commonName: 'tax' }, code: 'C', requester: 'w', procedure: 'p', item: 'i', recordId: 'R', legalBasisRow: 'B', deadline: 1 };
    const held = guard.provide(base);
    expect(await guard.provide(base)).toMatchObject({ reason: 'busy', retryAfterMs: 199 });
    inner.settle('tax', UNREACHABLE);
    await held;
    expect(await guard.provide(base)).toMatchObject({ reason: 'down', retryAfterMs: 1000 + 499 });
    r = 0;
    expect(await guard.provide(base)).toMatchObject({ reason: 'down', retryAfterMs: 1000 });
  });
});

describe('a provider breaker', () => {
  it('opens after calls in a row without an answer, fails fast with the time to the probe, and closes when the probe answers', async () => {
    const { guard, inner, refusals, call, advance } = setup({ threshold: 2, openMs: 1000, fairWaitMs: 500 });
    for (let i = 0; i < 2; i++) {
      const p = guard.provide(call('tax'));
      advance(600); // the provider had its fair chance, then the call timed out
      inner.settle('tax', TIMED_OUT);
      expect(await p).toEqual(TIMED_OUT);
    }
    expect(guard.breakerState('tax')).toBe('open');
    expect(await guard.provide(call('tax'))).toEqual({ kind: 'refused', reason: 'down', retryAfterMs: 1000, grpcStatus: status.UNAVAILABLE });
    expect(inner.pending).toHaveLength(0);
    expect(refusals).toEqual(['provider_down']);
    // Other providers go on.
    const other = guard.provide(call('pension'));
    inner.settle('pension', PROVIDED);
    expect(await other).toEqual(PROVIDED);

    advance(400);
    expect(await guard.provide(call('tax'))).toMatchObject({ reason: 'down', retryAfterMs: 600 });
    advance(600);
    expect(guard.breakerState('tax')).toBe('half_open');
    const probe = guard.provide(call('tax'));
    expect(inner.pending).toHaveLength(1);
    // Only one probe at a time.
    expect(await guard.provide(call('tax'))).toMatchObject({ kind: 'refused', reason: 'down' });
    inner.settle('tax', PROVIDED);
    expect(await probe).toEqual(PROVIDED);
    expect(guard.breakerState('tax')).toBe('closed');
    const next = guard.provide(call('tax'));
    expect(inner.pending).toHaveLength(1);
    inner.settle('tax', PROVIDED);
    await next;
  });

  it('stays open another cool-down when the probe gets no answer either', async () => {
    const { guard, inner, call, advance } = setup({ threshold: 1, openMs: 1000 });
    const first = guard.provide(call('tax'));
    inner.settle('tax', UNREACHABLE);
    await first;
    advance(1000);
    const probe = guard.provide(call('tax'));
    advance(700);
    inner.settle('tax', TIMED_OUT);
    await probe;
    expect(guard.breakerState('tax')).toBe('open');
    expect(await guard.provide(call('tax'))).toMatchObject({ reason: 'down', retryAfterMs: 1000 });
  });

  it('counts an error status as an answer: the provider is there', async () => {
    const { guard, inner, call } = setup({ threshold: 2 });
    for (const r of [UNREACHABLE, { kind: 'failed', code: 'INTERNAL', grpcStatus: status.INTERNAL } as const, UNREACHABLE, { kind: 'not-found' } as const, UNREACHABLE]) {
      const p = guard.provide(call('tax'));
      inner.settle('tax', r);
      await p;
    }
    expect(guard.breakerState('tax')).toBe('closed');
  });

  it('holds nothing against a provider for calls its requester cancelled, or timeouts shorter than a fair wait', async () => {
    const { guard, inner, call, advance } = setup({ threshold: 1, fairWaitMs: 500 });
    const ac = new AbortController();
    const cancelled = guard.provide(call('tax', ac.signal));
    ac.abort();
    inner.settle('tax', UNREACHABLE); // grpc-js reports a cancelled call as CANCELLED, which the client maps so
    await cancelled;
    const short = guard.provide(call('tax'));
    advance(499);
    inner.settle('tax', TIMED_OUT);
    await short;
    expect(guard.breakerState('tax')).toBe('closed');
    const fair = guard.provide(call('tax'));
    advance(500);
    inner.settle('tax', TIMED_OUT);
    await fair;
    expect(guard.breakerState('tax')).toBe('open');
  });

  it('lets the next call probe when the probe was cancelled by its requester', async () => {
    const { guard, inner, call, advance } = setup({ threshold: 1 });
    const first = guard.provide(call('tax'));
    inner.settle('tax', UNREACHABLE);
    await first;
    advance(1000);
    const ac = new AbortController();
    const probe = guard.provide(call('tax', ac.signal));
    ac.abort();
    inner.settle('tax', UNREACHABLE);
    await probe;
    const next = guard.provide(call('tax'));
    expect(inner.pending).toHaveLength(1);
    inner.settle('tax', PROVIDED);
    await next;
    expect(guard.breakerState('tax')).toBe('closed');
  });
});
