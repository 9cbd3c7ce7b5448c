import { describe, expect, it } from 'vitest';
import { balancedBoundaries } from '../../src/decompose/partition.js';

const anywhere = (): boolean => true;

/** Range sums for a cut of `costs` at `bounds`. */
function sums(costs: number[], bounds: number[]): number[] {
  const edges = [0, ...bounds, costs.length];
  return edges.slice(1).map((end, i) => costs.slice(edges[i], end).reduce((a, b) => a + b, 0));
}

describe('balancedBoundaries', () => {
  it('splits even costs evenly', () => {
    expect(balancedBoundaries([1, 1, 1, 1], 2, anywhere)).toEqual([2]);
    expect(balancedBoundaries([1, 1, 1, 1, 1, 1], 3, anywhere)).toEqual([2, 4]);
    expect(balancedBoundaries([7, 7, 7], 1, anywhere)).toEqual([]);
  });

  it('follows the costs, not the node counts', () => {
    // One heavy node against five light ones.
    expect(balancedBoundaries([5, 1, 1, 1, 1, 1], 2, anywhere)).toEqual([1]);
    expect(balancedBoundaries([1, 1, 1, 1, 1, 5], 2, anywhere)).toEqual([5]);
  });

  it('minimises the largest stage first, then evens out the rest', () => {
    const costs = [3, 1, 1, 1, 1, 3];
    const bounds = balancedBoundaries(costs, 3, anywhere);
    const s = sums(costs, bounds);
    expect(Math.max(...s)).toBe(4);
    // 3|1 1 1 1|3 (or 3|1 1 1|1 3, ...) beats 3 1|1 1|1 3, whose max is also 4 but sum of squares is 36 > 34.
    expect(s.reduce((a, b) => a + b * b, 0)).toBe(34);
  });

  it('only cuts where allowed', () => {
    expect(balancedBoundaries([1, 1, 1, 1], 2, (p) => p !== 2)).toEqual([1]);
    expect(balancedBoundaries([1, 1, 1, 1, 1, 1], 2, (p) => p === 5)).toEqual([5]);
    expect(() => balancedBoundaries([1, 1, 1, 1], 3, (p) => p === 2)).toThrow(/only 1 places to cut/);
    expect(() => balancedBoundaries([1, 1], 0, anywhere)).toThrow(/whole number >= 1/);
  });
});
