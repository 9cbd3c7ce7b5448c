/**
 * A stage whose inputs are not all batch-major, run through the executor on
 * a real ONNX session: a per-request scalar fed whole to every call, and a
 * state with its items on dim 1, over a request of more items than one batch
 * holds, against onnxruntime on the whole request at once.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '@ensemble/tools/onnx/builder.js';
import type { Tensor } from '../../src/tensor/types.js';
import { seededFloats } from '../fixtures/models.js';
import { startHarness, weightsYaml, type Harness } from './harness.js';

/** y = x * k, s_out = s + x: x [batch, 3], k [], s [2, batch, 3]. */
function model(): Uint8Array {
  return new GraphBuilder('axis')
    .input('x', 'FP32', ['batch', 3])
    .input('k', 'FP32', [])
    .input('s', 'FP32', [2, 'batch', 3])
    .output('y', 'FP32', ['batch', 3])
    .output('s_out', 'FP32', [2, 'batch', 3])
    .node('Mul', ['x', 'k'], ['y'])
    .node('Add', ['s', 'x'], ['s_out'])
    .build();
}

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });

describe('per-request inputs and batch axes in the executor', () => {
  it('cuts and joins along dim 1 and feeds the per-request scalar to every batch of the request', async () => {
    const bytes = model();
    const yaml = `name: axis
inputs:
  - { name: x, datatype: FP32, shape: [-1, 3] }
  - { name: k, datatype: FP32, shape: [], per_request: true }
  - { name: s, datatype: FP32, shape: [2, -1, 3], batch_axis: 1 }
outputs:
  - { name: y, datatype: FP32, shape: [-1, 3] }
  - { name: s_out, datatype: FP32, shape: [2, -1, 3], batch_axis: 1 }
stages:
  - name: m
    kind: onnx
    weights: ${weightsYaml('axis/m.onnx', 'm.onnx', bytes)}
    inputs: { x: x, k: k, s: s }
    outputs: { y: y, s_out: s_out }
    batch: { max_size: 2, max_delay_ms: 1 }
    scale: { isolation: inline }
`;
    const p = await h.load(yaml, { 'm.onnx': bytes });
    const x: Tensor = { datatype: 'FP32', shape: [5, 3], data: seededFloats(15, 1) };
    const k: Tensor = { datatype: 'FP32', shape: [], data: Float32Array.of(3) };
    const s: Tensor = { datatype: 'FP32', shape: [2, 5, 3], data: seededFloats(30, 2) };
    const result = await p.executor.run({ x, k, s });

    const session = await ort.InferenceSession.create(bytes);
    const want = await session.run({
      x: new ort.Tensor('float32', x.data as Float32Array, [5, 3]),
      k: new ort.Tensor('float32', k.data as Float32Array, []),
      s: new ort.Tensor('float32', s.data as Float32Array, [2, 5, 3]),
    });
    await session.release();
    expect(result.outputs.y.shape).toEqual([5, 3]);
    expect(Array.from(result.outputs.y.data as Float32Array)).toEqual(Array.from(want.y.data as Float32Array));
    expect(result.outputs.s_out.shape).toEqual([2, 5, 3]);
    expect(Array.from(result.outputs.s_out.data as Float32Array)).toEqual(Array.from(want.s_out.data as Float32Array));
    // Five items at max_size 2: the scalar rode with every one of the batches.
    expect(result.stages.find((st) => st.stage === 'm')!.items).toBe(5);
  });
});
