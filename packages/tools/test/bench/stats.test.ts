import { describe, expect, it } from 'vitest';
import { percentile, summarize } from '../../src/bench/stats.js';

describe('percentile (nearest rank)', () => {
  const hundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);

  it('returns observed values: p50 of 1..100 is 50, p99 is 99, p100 the max, p0 the min', () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile(hundred, 99.5)).toBe(100);
  });

  it('on few samples p99 is the largest', () => {
    expect(percentile([1, 2, 3], 99)).toBe(3);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([7], 50)).toBe(7);
  });

  it('rejects percentiles outside 0..100 and is NaN on no samples', () => {
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('summarize', () => {
  it('sorts its input and reports count, percentiles, mean, min and max', () => {
    const s = summarize([5, 1, 4, 2, 3, 100, 6, 7, 8, 9]);
    expect(s).toEqual({ count: 10, p50: 5, p99: 100, mean: 14.5, min: 1, max: 100 });
  });

  it('is all NaN but the count on no samples', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    expect(s.p50).toBeNaN();
    expect(s.mean).toBeNaN();
  });
});
