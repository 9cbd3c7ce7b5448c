/**
 * What the demo pipeline must answer, computed in plain JS (float64) from the
 * literal weights in build.ts, independently of ONNX Runtime:
 * y = (relu(x·Wa + ba) + sigmoid(x·Wb + bb)) / 2.
 */
import { DEMO_IN, DEMO_OUT, DEMO_WEIGHTS, type DenseWeights } from './build.js';

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
