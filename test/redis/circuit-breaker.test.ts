import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../../src/redis/circuit-breaker.js';

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
