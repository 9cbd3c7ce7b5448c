/**
 * A stage function's co-located stages (placement/colocated.ts): a function
 * stage placed before the model runs on what the gateway sends, one placed
 * after it (placement: with_model on a stage reading the model's output) runs
 * on the session's outputs, and the answer carries what the gateway reads,
 * not the output kept in the function. Real ONNX Runtime on the demo's
 * generated branch_a model.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildIfNeeded } from '@ensemble/tools/pipelines/build.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest, OnnxStage } from '../../src/manifest/types.js';
import { gatewayView, groupOf, placeStages } from '../../src/placement/placement.js';
import { loadColocatedStages } from '../../src/placement/colocated.js';
import { createOnnxRuntime } from '../../src/runtime/onnx.js';
import type { StageRuntime } from '../../src/runtime/types.js';
import { removePipelines, writePipeline } from '../manifest/helpers.js';

const DEMO = fileURLToPath(new URL('../../../../models/demo/pipeline.yaml', import.meta.url));
const MODEL = fileURLToPath(new URL('../../../../models/demo/build/branch_a.onnx', import.meta.url));

/** x doubled before the model; after it, the index of the largest of the model's 3 outputs, refused for a negative x[0]. */
const PIPE = `
name: post
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: label, datatype: INT64, shape: [-1] }]
stages:
  - name: twice
    kind: function
    module: stages/twice.mjs
    placement: with_model
    inputs: [x]
    outputs: [{ name: x2, datatype: FP32, shape: [-1, 4] }]
  - name: model
    kind: onnx
    weights: { key: demo/branch_a.onnx, sha256: ${'a'.repeat(64)}, source: ${MODEL} }
    inputs: { input: x2 }
    outputs: { output: scores }
  - name: top
    kind: function
    module: stages/top.mjs
    placement: with_model
    inputs: [scores, x]
    outputs: [{ name: best, datatype: INT64, shape: [-1] }]
  - name: name
    kind: function
    module: stages/name.mjs
    inputs: [best]
    outputs: [{ name: label, datatype: INT64, shape: [-1] }]
`;

const MODULES = {
  'stages/twice.mjs': `export default { process: ({ x }) => ({ x2: { datatype: 'FP32', shape: [...x.shape], data: x.data.map((v) => v * 2) } }) };\n`,
  'stages/top.mjs': `export default { process: ({ scores, x }) => {
  if (x.data[0] < 0) throw new Error('x[0] is negative');
  const s = scores.data; let best = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[best]) best = i;
  return { best: { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(best)) } };
} };\n`,
  'stages/name.mjs': `export default { process: ({ best }) => ({ label: best }) };\n`,
};

describe('co-located stages before and after the model', () => {
  let m: Manifest;
  let runtime: StageRuntime;

  beforeAll(async () => {
    await buildIfNeeded(await loadManifest(DEMO));
    const { file } = await writePipeline(PIPE, MODULES);
    m = await loadManifest(file);
    const stage = m.stages.find((s): s is OnnxStage => s.name === 'model')!;
    const wrap = await loadColocatedStages(m, stage, groupOf(placeStages(m), stage.name));
    runtime = wrap(await createOnnxRuntime({ stage, modelPath: MODEL }));
  });
  afterAll(async () => {
    await runtime?.close();
    await removePipelines();
  });

  it('places the stage reading the model\'s output after it, returns its output and keeps the model\'s', () => {
    expect(placeStages(m).groups).toEqual([{
      onnx: 'model',
      colocated: [{ stage: 'twice', mode: 'moved' }, { stage: 'top', mode: 'moved', after: true }],
      inputs: ['x'], returns: ['best'], kept: ['scores'],
    }]);
    const view = gatewayView(m);
    expect(view.order).toEqual(['model', 'name']);
    const model = view.stages.find((s) => s.name === 'model')!;
    expect(model.inputs).toEqual({ x: 'x' });
    expect(model.outputs).toEqual({ best: 'best' });
  });

  it('runs before, the session, then after on each item; an item the after stage refuses fails alone, naming it', async () => {
    const xs = [[0.5, -1, 2, 0.25], [-3, 1, 1, 1], [1, 2, 3, 4]];
    const items = xs.map((x) => ({ x: { datatype: 'FP32' as const, shape: [4], data: Float32Array.from(x) } }));
    const r = await runtime.run(items);

    // What the model says of 2x, from a session of its own.
    const session = await ort.InferenceSession.create(MODEL);
    const expected: bigint[] = [];
    for (const x of xs) {
      const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x, (v) => v * 2), [1, 4]) });
      const s = out.output.data as Float32Array;
      expected.push(BigInt(s.indexOf(Math.max(...s))));
    }
    await session.release();

    expect(r.outcomes[1]).toEqual({ ok: false, error: "stage 'top': x[0] is negative", code: expect.any(String) });
    expect(r.outcomes.filter((o) => o.ok)).toHaveLength(2);
    for (const i of [0, 2]) {
      const o = r.outcomes[i];
      if (!o.ok) throw new Error(`item ${i} failed: ${o.error}`);
      // Only what the gateway reads comes back: the scores stay in the function.
      expect(Object.keys(o.items[0])).toEqual(['best']);
      expect(o.items[0].best.data).toEqual(BigInt64Array.of(expected[i]));
    }
  });
  it("fails only the items of a shape the session refuses, when a batch holds several", async () => {
    // The model takes 4 values; an item of 5 passes 'twice' and makes a session run of its own, which fails.
    const item = (n: number, v: number) => ({ x: { datatype: 'FP32' as const, shape: [n], data: new Float32Array(n).fill(v) } });
    const r = await runtime.run([item(4, 1), item(5, 1), item(4, 2)]);
    expect(r.outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    const bad = r.outcomes[1];
    if (bad.ok) throw new Error('unreachable');
    expect(bad.code).toBe('stage_failed');
    expect(bad.error).toMatch(/^stage 'model'/);
    // A batch of that shape alone still throws, as a failed session run always did (a function error on Lambda).
    await expect(runtime.run([item(5, 1)])).rejects.toThrow();
  });
});
