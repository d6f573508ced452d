import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../../src/limits/circuit-breaker.js';

describe('circuit breakers, one per node', () => {
  it('open after the threshold of failures in a row, and only for that node', () => {
    const b = new CircuitBreakers(3);
    expect(b.failed('a')).toBe(false);
    expect(b.failed('a')).toBe(false);
    b.succeeded('a'); // a success resets the count
    expect(b.failed('a')).toBe(false);
    expect(b.failed('a')).toBe(false);
    expect(b.failed('a')).toBe(true);
    expect(b.failed('a')).toBe(false); // already open: reported once
    expect(b.allows('a')).toBe(false);
    expect(b.allows('b')).toBe(true);
    expect(b.open()).toEqual(['a']);
  });

  it('trip at once, close on a good probe, and start afresh', () => {
    const b = new CircuitBreakers(3);
    expect(b.trip('n')).toBe(true);
    expect(b.trip('n')).toBe(false);
    expect(b.allows('n')).toBe(false);
    expect(b.close('n')).toBe(true);
    expect(b.close('n')).toBe(false);
    expect(b.allows('n')).toBe(true);
    expect(b.failed('n')).toBe(false);
    expect(b.open()).toEqual([]);
  });
});

describe('circuit breakers with a cool-down (half-open probes), on an injected clock', () => {
  function breakers(threshold = 3, openMs = 1000) {
    let now = 1_000_000;
    const b = new CircuitBreakers(threshold, { openMs, clock: () => now });
    return { b, advance: (ms: number) => (now += ms) };
  }

  it('stay open for the cool-down, then let exactly one probe through', () => {
    const { b, advance } = breakers();
    for (let i = 0; i < 3; i++) expect(b.enter('p')).toBe('closed');
    expect([b.failed('p'), b.failed('p'), b.failed('p')]).toEqual([false, false, true]);
    expect(b.enter('p')).toBe('open');
    expect(b.state('p')).toBe('open');
    expect(b.retryAfterMs('p')).toBe(1000);
    advance(999);
    expect(b.enter('p')).toBe('open');
    expect(b.retryAfterMs('p')).toBe(1);
    advance(1);
    expect(b.state('p')).toBe('half_open');
    expect(b.enter('p')).toBe('probe');
    // While the probe is out, nothing else goes.
    expect(b.enter('p')).toBe('open');
    expect(b.enter('q')).toBe('closed');
  });

  it('close when the probe answers, and count from zero again', () => {
    const { b, advance } = breakers(2);
    b.failed('p');
    b.failed('p');
    advance(1000);
    expect(b.enter('p')).toBe('probe');
    expect(b.succeeded('p')).toBe(true);
    expect(b.state('p')).toBe('closed');
    expect(b.enter('p')).toBe('closed');
    expect(b.failed('p')).toBe(false);
    expect(b.succeeded('p')).toBe(false);
    expect(b.failed('p')).toBe(false);
  });

  it('stay open another cool-down when the probe fails, reporting the opening only once', () => {
    const { b, advance } = breakers(1, 500);
    expect(b.failed('p')).toBe(true);
    advance(600);
    expect(b.enter('p')).toBe('probe');
    advance(200); // the probe takes its time, then fails
    expect(b.failed('p')).toBe(false);
    expect(b.state('p')).toBe('open');
    expect(b.retryAfterMs('p')).toBe(500);
    advance(499);
    expect(b.enter('p')).toBe('open');
    advance(1);
    expect(b.enter('p')).toBe('probe');
  });

  it('let the next call probe when a probe ends without a verdict', () => {
    const { b, advance } = breakers(1);
    b.failed('p');
    advance(1000);
    expect(b.enter('p')).toBe('probe');
    b.abandoned('p');
    expect(b.enter('p')).toBe('probe');
  });

  it('ignore a late answer of a call made before the breaker opened (only a probe closes it)', () => {
    const { b } = breakers(1);
    expect(b.enter('p')).toBe('closed');
    b.failed('p');
    expect(b.succeeded('p')).toBe(false);
    expect(b.enter('p')).toBe('open');
  });

  it('without a cool-down, stay open until closed (the Redis connection probes by itself)', () => {
    let now = 0;
    const b = new CircuitBreakers(1, { clock: () => now });
    b.failed('n');
    now += 3_600_000;
    expect(b.enter('n')).toBe('open');
    expect(b.state('n')).toBe('open');
    expect(b.retryAfterMs('n')).toBe(0);
    expect(b.close('n')).toBe(true);
    expect(b.enter('n')).toBe('closed');
  });
});
