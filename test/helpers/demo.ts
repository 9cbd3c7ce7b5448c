/** The demo's expected answers (from models/demo) and closeness checks for tests. */
import { expect } from 'vitest';
export { demoExpected } from '../../models/demo/expected.js';

/** Element-wise closeness for float32 results against float64 references. */
export function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    expect(err, `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThan(tolerance);
  }
}

/** The README's example request. */
export const README_X = [1, 2, 3, 4, 0.5, -1, 0, 2];
export const README_BODY = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: README_X }] });
