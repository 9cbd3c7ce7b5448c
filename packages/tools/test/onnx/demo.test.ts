import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDemoModels, DEMO_IN, DEMO_OUT, DEMO_WEIGHTS } from '../../../../models/demo/build.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { sha256Hex } from '../../../core/test/fixtures/models.js';
import { ort, runModel } from '../../../core/test/fixtures/ort.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-demo-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The branch in plain JS from the literal weights. */
function expected(x: number[], which: 'branch_a' | 'branch_b'): number[] {
  const { w, b } = DEMO_WEIGHTS[which];
  const out: number[] = [];
  for (let r = 0; r < x.length / DEMO_IN; r++) {
    for (let c = 0; c < DEMO_OUT; c++) {
      let z = b[c];
      for (let k = 0; k < DEMO_IN; k++) z += x[r * DEMO_IN + k] * w[k][c];
      out.push(which === 'branch_a' ? Math.max(0, z) : 1 / (1 + Math.exp(-z)));
    }
  }
  return out;
}

describe('demo models', () => {
  it('builds the same bytes every time, with the manifest keys and true sha256s', async () => {
    const first = await buildDemoModels(tempDir());
    const second = await buildDemoModels(join(tempDir(), 'nested', 'out'));
    expect(first.map((m) => m.key)).toEqual(['demo/branch_a.onnx', 'demo/branch_b.onnx']);
    expect(second.map((m) => m.sha256)).toEqual(first.map((m) => m.sha256));
    expect(first[0].sha256).not.toBe(first[1].sha256);
    for (const m of [...first, ...second]) {
      expect(sha256Hex(readFileSync(m.file))).toBe(m.sha256);
    }
  });

  it('declares input [batch, 4] and output [batch, 3], both FP32', async () => {
    for (const m of await buildDemoModels(tempDir())) {
      const info = inspectModel(m.file);
      expect(info.inputs).toEqual([{ name: 'input', datatype: 'FP32', elemType: 1, shape: ['batch', 4], rankKnown: true, kind: 'tensor' }]);
      expect(info.outputs).toEqual([{ name: 'output', datatype: 'FP32', elemType: 1, shape: ['batch', 3], rankKnown: true, kind: 'tensor' }]);
      expect(info.parameterCount).toBe(4 * 3 + 3);
    }
  });

  it('computes Relu(x·Wa + ba) and Sigmoid(x·Wb + bb) as plain JS does', async () => {
    const [a, b] = await buildDemoModels(tempDir());
    const x = [1, 2, 3, 4, -1, 0.5, -2, 0.25, 0, 0, 0, 0];
    const input = new ort.Tensor('float32', Float32Array.from(x), [3, DEMO_IN]);
    const outA = (await runModel(a.file, { input })).output;
    const outB = (await runModel(b.file, { input })).output;
    expect(outA.dims).toEqual([3, DEMO_OUT]);
    expect(outB.dims).toEqual([3, DEMO_OUT]);
    const ea = expected(x, 'branch_a');
    const eb = expected(x, 'branch_b');
    Array.from(outA.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(ea[i], 5));
    Array.from(outB.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(eb[i], 5));
    // Non-trivial: the Relu clips some units and passes others.
    expect(ea.some((v) => v === 0) && ea.some((v) => v > 0.5)).toBe(true);
  });
});
