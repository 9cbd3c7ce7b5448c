/**
 * What the demo pipeline must answer, computed in plain JS (float64) from the
 * literal weights in models/demo/build.ts, independently of ONNX Runtime:
 * y = (relu(x·Wa + ba) + sigmoid(x·Wb + bb)) / 2.
 */
import { expect } from 'vitest';
import { DEMO_IN, DEMO_OUT, DEMO_WEIGHTS, type DenseWeights } from '../../models/demo/build.js';

function dense(x: readonly number[], { w, b }: DenseWeights, row: number, col: number): number {
  let z = b[col];
  for (let k = 0; k < DEMO_IN; k++) z += x[row * DEMO_IN + k] * w[k][col];
  return z;
}

/** Row-major y for row-major x ([rows, 4] -> [rows, 3]). */
export function demoExpected(x: readonly number[]): number[] {
  const rows = x.length / DEMO_IN;
  const y: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < DEMO_OUT; c++) {
      const a = Math.max(0, dense(x, DEMO_WEIGHTS.branch_a, r, c));
      const s = 1 / (1 + Math.exp(-dense(x, DEMO_WEIGHTS.branch_b, r, c)));
      y.push((a + s) / 2);
    }
  }
  return y;
}

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
