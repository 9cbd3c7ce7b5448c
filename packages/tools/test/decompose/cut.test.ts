import { describe, expect, it } from 'vitest';
import { cutModel } from '../../src/decompose/cut.js';
import { runStages } from '../../src/decompose/run-stages.js';
import { readProvenance } from '../../src/decompose/stage-model.js';
import type { CutPlan, CutResult } from '../../src/decompose/types.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { decodeModel, int64ToNumber, onnx } from '../../src/onnx/proto.js';
import { seededFloats, sha256Hex, SKIP_DIM, skipConnectionModel } from '../../../core/test/fixtures/models.js';
import { ort, runModel } from '../../../core/test/fixtures/ort.js';
import { longSkipModel, shapeHelperModel, WIDE } from './models.js';

function input(batch: number, width: number, seed: number): ort.Tensor {
  return new ort.Tensor('float32', seededFloats(batch * width, seed), [batch, width]);
}

function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  expect(a.dims).toEqual(b.dims);
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  return worst;
}

/** Runs the stages chained by tensor name and the whole model on the same input; returns the max abs difference of y. */
async function chainedVsWhole(model: Uint8Array, cut: CutResult, x: ort.Tensor): Promise<number> {
  const whole = await runModel(model, { x });
  const chained = await runStages(cut.stages.map((s) => ({ name: s.name, model: s.bytes, inputs: s.inputs })), { x });
  return maxAbsDiff(chained.outputs.y, whole.y);
}

const graphOf = (bytes: Uint8Array): onnx.GraphProto => decodeModel(bytes).graph as onnx.GraphProto;
const initializersOf = (bytes: Uint8Array): string[] => graphOf(bytes).initializer.map((t) => t.name ?? '').sort();
const constantsOf = (bytes: Uint8Array): string[] =>
  graphOf(bytes).node.filter((n) => n.opType === 'Constant').flatMap((n) => n.output ?? []);

describe('cutModel on skipConnectionModel (y = ... + x)', () => {
  const model = skipConnectionModel();
  const plans: [string, CutPlan, number][] = [
    ['--stages 2', { stages: 2 }, 2],
    ['--stages 3', { stages: 3 }, 3],
    ['--at h3', { at: ['h3'] }, 2],
    ['--at h2,h5', { at: ['h2', 'h5'] }, 3],
  ];

  for (const [label, plan, count] of plans) {
    it(`${label}: the chained stages compute the whole model at batch 1 and 5`, async () => {
      const cut = await cutModel(model, plan, { name: 'skip' });
      expect(cut.stages.map((s) => s.name)).toEqual(Array.from({ length: count }, (_, i) => `skip_${i + 1}`));
      for (const batch of [1, 5]) {
        expect(await chainedVsWhole(model, cut, input(batch, SKIP_DIM, 10 + batch))).toBeLessThanOrEqual(1e-6);
      }
      // Graph input and output keep their names; x goes straight from the input to the last stage.
      expect(cut.stages[0].inputs).toEqual([{ name: 'x', elemType: 1, from: 'input' }]);
      const last = cut.stages[count - 1];
      expect(last.outputs).toEqual(['y']);
      expect(last.inputs.find((i) => i.name === 'x')).toEqual({ name: 'x', elemType: 1, from: 'input' });
      for (const middle of cut.stages.slice(1, -1)) expect(middle.inputs.map((i) => i.name)).not.toContain('x');
    });
  }

  it('puts each initializer only in the stage whose nodes read it', async () => {
    const cut = await cutModel(model, { at: ['h3'] });
    expect(initializersOf(cut.stages[0].bytes)).toEqual(['b1', 'w1']);
    expect(initializersOf(cut.stages[1].bytes)).toEqual(['b2', 'w2', 'w3']);
    const balanced = await cutModel(model, { stages: 3 });
    const all = balanced.stages.flatMap((s) => initializersOf(s.bytes)).sort();
    expect(all).toEqual(['b1', 'b2', 'w1', 'w2', 'w3']);
    for (const s of balanced.stages) {
      const read = new Set(graphOf(s.bytes).node.flatMap((n) => n.input));
      for (const name of initializersOf(s.bytes)) expect(read.has(name)).toBe(true);
    }
  });

  it('keeps the batch dim dynamic, the opset, the IR version, and records where the stage came from', async () => {
    const cut = await cutModel(model, { stages: 3 });
    const original = decodeModel(model);
    for (const s of cut.stages) {
      const info = inspectModel(s.bytes);
      for (const v of [...info.inputs, ...info.outputs]) {
        expect(v.shape[0]).toBe('batch');
        expect(v.datatype).toBe('FP32');
        expect(v.shape).toHaveLength(2);
      }
      const decoded = decodeModel(s.bytes);
      expect(int64ToNumber(decoded.irVersion)).toBe(int64ToNumber(original.irVersion));
      expect(decoded.opsetImport.map((o) => [o.domain, int64ToNumber(o.version)])).toEqual(original.opsetImport.map((o) => [o.domain, int64ToNumber(o.version)]));
      expect(readProvenance(decoded)).toEqual({ source: sha256Hex(model), stage: s.index, of: 3 });
    }
    // The whole model's input and output are declared exactly as before.
    expect(inspectModel(cut.stages[0].bytes).inputs[0]).toEqual(inspectModel(model).inputs[0]);
    expect(inspectModel(cut.stages[2].bytes).outputs[0]).toEqual(inspectModel(model).outputs[0]);
  });

  it('writes the same bytes every time', async () => {
    const a = await cutModel(model, { stages: 3 });
    const b = await cutModel(new Uint8Array(model), { stages: 3 });
    expect(b.stages.map((s) => s.sha256)).toEqual(a.stages.map((s) => s.sha256));
    expect(a.stages.map((s) => sha256Hex(s.bytes))).toEqual(a.stages.map((s) => s.sha256));
  });

  it('counts nodes, parameters and weight bytes per stage', async () => {
    const cut = await cutModel(model, { at: ['h3'] });
    expect(cut.stages.map((s) => s.nodeCount)).toEqual([3, 5]);
    // w1 8x16 + b1 16 | w2 16x16 + b2 16 + w3 16x8
    expect(cut.stages.map((s) => s.parameterCount)).toEqual([144, 400]);
    expect(cut.stages.map((s) => s.weightBytes)).toEqual([576, 1600]);
  });

  it('explains a bad --at', async () => {
    await expect(cutModel(model, { at: ['h33'] })).rejects.toThrow(/'h33': it is not a tensor of the graph \(did you mean 'h3'\?\)/);
    await expect(cutModel(model, { at: ['w1'] })).rejects.toThrow(/is a weight/);
    await expect(cutModel(model, { at: ['x'] })).rejects.toThrow(/is a graph input/);
    await expect(cutModel(model, { at: ['y'] })).rejects.toThrow(/leaves nothing for stage 2/);
    await expect(cutModel(model, { at: ['h5', 'h3'] })).rejects.toThrow(/stage 2 would be empty/);
    await expect(cutModel(model, { stages: 9 })).rejects.toThrow(/cannot cut 8 nodes into 9 stages/);
  });
});

describe('cutModel on a skip across two cuts', () => {
  const model = longSkipModel();

  it('--at h2,h4: h1 goes from stage 1 straight to stage 3, and the Constant k is copied where it is read', async () => {
    const cut = await cutModel(model, { at: ['h2', 'h4'] });
    const [s1, s2, s3] = cut.stages;
    expect(s1.outputs.sort()).toEqual(['h1', 'h2']);
    expect(s2.inputs).toEqual([{ name: 'h2', elemType: 1, from: 1 }]);
    expect(s2.outputs).toEqual(['h4']);
    expect(s3.inputs).toEqual([{ name: 'h1', elemType: 1, from: 1 }, { name: 'h4', elemType: 1, from: 2 }]);
    expect(constantsOf(s1.bytes)).toEqual(['k']);
    expect(constantsOf(s2.bytes)).toEqual([]);
    expect(constantsOf(s3.bytes)).toEqual(['k']);
    for (const batch of [1, 5]) {
      expect(await chainedVsWhole(model, cut, input(batch, 4, 20 + batch))).toBeLessThanOrEqual(1e-6);
    }
    const info = inspectModel(s3.bytes);
    expect(info.inputs.map((v) => [v.name, v.shape[0], v.shape.length])).toEqual([['h1', 'batch', 2], ['h4', 'batch', 2]]);
    expect(info.outputs[0]).toEqual({ ...inspectModel(model).outputs[0] });
    expect(info.outputs[0].shape).toEqual(['batch', WIDE]);
  });

  it('--stages 3 computes the whole model', async () => {
    const cut = await cutModel(model, { stages: 3 });
    expect(cut.stages).toHaveLength(3);
    expect(cut.stages[2].inputs.some((i) => i.name === 'h1' && i.from === 1)).toBe(true);
    expect(await chainedVsWhole(model, cut, input(5, 4, 31))).toBeLessThanOrEqual(1e-6);
  });
});

describe('cutModel around a tensor without a batch dim', () => {
  const model = shapeHelperModel();

  it('never cuts where Shape(b) is alive, and the cut computes the whole model', async () => {
    for (const stages of [2, 3, 5]) {
      const cut = await cutModel(model, { stages });
      for (const s of cut.stages) {
        expect(s.inputs.map((i) => i.name)).not.toContain('s');
        for (const v of inspectModel(s.bytes).inputs) expect(v.shape[0]).toBe('batch');
      }
      expect(await chainedVsWhole(model, cut, input(3, 5, 40 + stages))).toBeLessThanOrEqual(1e-6);
    }
  });

  it('refuses a cut that would carry it, and more stages than there are places to cut', async () => {
    await expect(cutModel(model, { at: ['s'] })).rejects.toThrow(/tensor 's' would cross from stage 1 to stage 2, but its dim 0 is not the batch \(shape \[2\] at batch 1\)/);
    await expect(cutModel(model, { stages: 6 })).rejects.toThrow(/only 4 places to cut/);
  });
});
