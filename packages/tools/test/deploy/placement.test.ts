/**
 * Where planDeployment puts function stages on Lambda (core placement/placement.ts):
 * next to the ONNX stage they feed when that shrinks what crosses the
 * function boundary, judged from the declared dtypes and shapes.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../../core/src/manifest/load.js';
import { gatewayView, placeStages } from '../../../core/src/placement/placement.js';
import { planDeployment } from '../../src/deploy/plan.js';
import { removePipelines, STAGE_MODULE, writePipeline } from '../../../core/test/manifest/helpers.js';

const REPO = path.resolve(import.meta.dirname, '../../../..');

afterAll(removePipelines);

const W = (c: string) => `{ key: p/${c}.onnx, sha256: ${c.repeat(64)} }`;

/** pre widens UINT8 pixels to FP32 for model; post reads the model's output; norm shrinks to a fixed size. */
const PIPE = `
name: place
inputs: [{ name: pixels, datatype: UINT8, shape: [-1, -1, -1, 3] }]
outputs: [{ name: out, datatype: FP32, shape: [-1, 4] }, { name: side, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: pre
    kind: function
    module: stages/f.ts
    inputs: [pixels]
    outputs:
      - { name: tensor, datatype: FP32, shape: [-1, 3, -1, -1] }
      - { name: side, datatype: FP32, shape: [-1, 2] }
  - name: model
    kind: onnx
    weights: ${W('a')}
    inputs: { x: tensor }
    outputs: { y: raw }
  - name: small
    kind: function
    module: stages/f.ts
    inputs: [pixels]
    outputs: [{ name: fixed, datatype: FP32, shape: [-1, 3, 8, 8] }]
  - name: model2
    kind: onnx
    weights: ${W('b')}
    inputs: { x: fixed }
    outputs: { y: raw2 }
  - name: post
    kind: function
    module: stages/f.ts
    inputs: [raw, raw2, side]
    outputs: [{ name: out, datatype: FP32, shape: [-1, 4] }]
`;

async function load(yaml: string) {
  const { file } = await writePipeline(yaml, { 'stages/f.ts': STAGE_MODULE });
  return loadManifest(file);
}

describe('placement', () => {
  it('moves a stage whose output outgrows its input into the function it feeds, returning what the gateway still reads', async () => {
    const m = await load(PIPE);
    const p = placeStages(m);
    expect(p.groups).toEqual([
      // 3·D² bytes of pixels cross instead of 12·D² of floats; side (8 bytes) comes back for post.
      { onnx: 'model', colocated: [{ stage: 'pre', mode: 'moved' }], inputs: ['pixels'], returns: ['side'] },
      // 3·8·8 FP32 is a fixed 768 bytes, less than D² pixels: small stays in the gateway.
      { onnx: 'model2', colocated: [], inputs: ['fixed'], returns: [] },
    ]);
    const view = gatewayView(m, p);
    expect(view.stages.map((s) => s.name)).toEqual(['model', 'small', 'model2', 'post']);
    const model = view.stages.find((s) => s.name === 'model')!;
    expect(model.inputs).toEqual({ pixels: 'pixels' });
    expect(model.outputs).toEqual({ y: 'raw', side: 'side' });
    expect(view.order).not.toContain('pre');
    // pre makes tensors as large as the pixels it gets ([3, -1, -1]): items of different sizes would need a session
    // run each, one after another in one Invoke, so the gateway keeps batching them by shape.
    expect(model.anyShapes).toBeUndefined();
    expect(view.stages.find((s) => s.name === 'model2')!.anyShapes).toBeUndefined();
  });

  it('lets the gateway batch any shapes for a function whose pre-processing makes one shape, keyed by pipeline names', async () => {
    // fix makes one [3, 8, 8] whatever the pixels' size; model also reads a per-request k in the second manifest.
    const fixed = (k: string) => `
name: fixed
inputs: [{ name: pixels, datatype: UINT8, shape: [-1, -1, -1, 3] }${k}]
outputs: [{ name: raw, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: fix, kind: function, module: stages/f.ts, placement: with_model, inputs: [pixels], outputs: [{ name: t, datatype: FP32, shape: [-1, 3, 8, 8] }] }
  - { name: model, kind: onnx, weights: ${W('1')}, inputs: { x: t${k ? ', kk: k' : ''} }, outputs: { y: raw } }
`;
    const one = gatewayView(await load(fixed(''))).stages.find((s) => s.name === 'model')!;
    expect(one.anyShapes).toBe(true);
    expect(one.perRequest).toBeUndefined();
    // A per-request input: one session run takes one value, so items keep to their shape and value, and the
    // value is looked up under the name the view's items carry (k), not the model's (kk).
    const withK = gatewayView(await load(fixed(', { name: k, datatype: FP32, shape: [], per_request: true }'))).stages.find((s) => s.name === 'model')!;
    expect(withK.inputs).toEqual({ pixels: 'pixels', k: 'k' });
    expect(withK.perRequest).toEqual(['k']);
    expect(withK.anyShapes).toBeUndefined();
  });

  it('runs a stage in both places when its output is also read in the gateway and is the larger side', async () => {
    // decode: encoded BYTES (D) to pixels (3·D²), which crop in the gateway needs too.
    const m = await load(`
name: both
inputs: [{ name: image, datatype: BYTES, shape: [-1] }]
outputs: [{ name: lines, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: decode, kind: function, module: stages/f.ts, inputs: [image], outputs: [{ name: rgb, datatype: UINT8, shape: [-1, -1, -1, 3] }] }
  - { name: pre, kind: function, module: stages/f.ts, inputs: [rgb], outputs: [{ name: t, datatype: FP32, shape: [-1, 3, -1, -1] }] }
  - { name: det, kind: onnx, weights: ${W('c')}, inputs: { x: t }, outputs: { y: prob } }
  - { name: crop, kind: function, module: stages/f.ts, inputs: [rgb, prob], outputs: [{ name: lines, datatype: FP32, shape: [-1, 2] }] }
`);
    expect(placeStages(m).groups).toEqual([
      { onnx: 'det', colocated: [{ stage: 'decode', mode: 'both' }, { stage: 'pre', mode: 'moved' }], inputs: ['image'], returns: [] },
    ]);
    // decode stays in the gateway's DAG (crop reads rgb); pre leaves it.
    expect(gatewayView(m).stages.map((s) => s.name)).toEqual(['decode', 'det', 'crop']);
  });

  it('leaves a stage in the gateway when it feeds two ONNX stages, fans out, or makes an untyped tensor cross', async () => {
    const m = await load(`
name: stay
inputs: [{ name: img, datatype: UINT8, shape: [-1, -1, 3] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: shared, kind: function, module: stages/f.ts, inputs: [img], outputs: [{ name: t, datatype: FP32, shape: [-1, 3, -1, -1] }] }
  - { name: a, kind: onnx, weights: ${W('d')}, inputs: { x: t }, outputs: { y: ya } }
  - { name: b, kind: onnx, weights: ${W('e')}, inputs: { x: t }, outputs: { y: yb } }
  - { name: widen, kind: function, module: stages/f.ts, inputs: [ya], outputs: [{ name: w, datatype: FP32, shape: [-1, -1, -1, -1] }] }
  - { name: c, kind: onnx, weights: ${W('f')}, inputs: { x: w, z: yb }, outputs: { y: y } }
`);
    expect(placeStages(m).groups.map((g) => g.colocated)).toEqual([[], [], []]);
    expect(gatewayView(m)).toBe(m);
  });

  it('follows a stage\'s placement over the sizes: with_model joins its model, gateway stays, and a with_model that cannot move is a plan error', async () => {
    // small's fixed 768 bytes beat D² pixels, so by the sizes it stays; with_model moves it. pre would move; gateway keeps it.
    const m = await load(PIPE
      .replace('  - name: small\n    kind: function\n', '  - name: small\n    kind: function\n    placement: with_model\n')
      .replace('  - name: pre\n    kind: function\n', '  - name: pre\n    kind: function\n    placement: gateway\n'));
    expect(placeStages(m).groups).toEqual([
      { onnx: 'model', colocated: [], inputs: ['tensor'], returns: [] },
      { onnx: 'model2', colocated: [{ stage: 'small', mode: 'moved' }], inputs: ['pixels'], returns: [] },
    ]);
    expect(planDeployment([m], { root: path.dirname(m.file) }).stages.find((s) => s.stage === 'model2')!.receives).toEqual(['pixels']);
    // A fan-out cannot run inside a stage function: asked to, the plan says so and names the stage.
    const fan = await load(`
name: fanplace
inputs: [{ name: img, datatype: UINT8, shape: [-1, -1, 3] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: split, kind: function, fanout: true, placement: with_model, module: stages/f.ts, inputs: [img], outputs: [{ name: t, datatype: FP32, shape: [-1, 3, 8, 8] }] }
  - { name: a, kind: onnx, weights: ${W('d')}, inputs: { x: t }, outputs: { y: y } }
`);
    expect(() => planDeployment([fan], { root: path.dirname(fan.file) })).toThrow(/stage 'split'.*placement: with_model, but no ONNX stage's function can run it/);
  });

  it('runs a with_model stage that reads the model\'s output after it, only when the function has all it reads and it feeds no model', async () => {
    // post reads raw (model's) and side (pre's, in the group): with_model puts it after model, and raw stays there.
    // (model2's output, which post no longer reads, becomes a pipeline output of its own.)
    const postReads = (lines: string) => PIPE
      .replace("{ name: side, datatype: FP32, shape: [-1, 2] }]\nstages:", "{ name: side, datatype: FP32, shape: [-1, 2] }, { name: raw2, datatype: FP32, shape: [-1, 2] }]\nstages:")
      .replace('    inputs: [raw, raw2, side]\n', lines);
    const after = await load(postReads('    placement: with_model\n    inputs: [raw, side]\n'));
    expect(placeStages(after).groups[0]).toEqual({
      onnx: 'model', colocated: [{ stage: 'pre', mode: 'moved' }, { stage: 'post', mode: 'moved', after: true }],
      inputs: ['pixels'], returns: ['side', 'out'], kept: ['raw'],
    });
    expect(gatewayView(after).stages.find((s) => s.name === 'model')!.outputs).toEqual({ out: 'out', side: 'side' });
    // Without with_model it stays in the gateway: the model's output has no declared size to weigh.
    expect(placeStages(await load(postReads('    inputs: [raw, side]\n'))).groups[0].colocated)
      .toEqual([{ stage: 'pre', mode: 'moved' }]);
    // As the PIPE has it, post also reads model2's output, which model's function never has: the plan refuses it, naming it.
    const apart = await load(PIPE.replace('    inputs: [raw, raw2, side]\n', '    placement: with_model\n    inputs: [raw, raw2, side]\n'));
    expect(placeStages(apart).groups.flatMap((g) => g.colocated.map((c) => c.stage))).not.toContain('post');
    expect(() => planDeployment([apart], { root: path.dirname(apart.file) })).toThrow(/stage 'post'.*placement: with_model, but no ONNX stage's function can run it/);
  });

  it('never puts after the model a stage that does not read what the model makes, nor anything after a model a `when` may skip', async () => {
    // f reads only what pre (before model) makes; g, in the gateway, turns f's output into model's second input.
    // After model, f would wait for model and model for g: it stays where it is, and the plan says so.
    const loop = await load(`
name: loop
inputs: [{ name: pixels, datatype: UINT8, shape: [-1, -1, -1, 3] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: pre, kind: function, module: stages/f.ts, inputs: [pixels], outputs: [{ name: t, datatype: FP32, shape: [-1, 3, -1, -1] }, { name: b, datatype: FP32, shape: [-1, 2] }] }
  - { name: f, kind: function, module: stages/f.ts, placement: with_model, inputs: [b], outputs: [{ name: c, datatype: FP32, shape: [-1, 2] }] }
  - { name: g, kind: function, module: stages/f.ts, placement: gateway, inputs: [c], outputs: [{ name: d, datatype: FP32, shape: [-1, 2] }] }
  - { name: model, kind: onnx, weights: ${W('a')}, inputs: { x: t, z: d }, outputs: { y: y } }
`);
    expect(placeStages(loop).groups[0].colocated).toEqual([{ stage: 'pre', mode: 'moved' }]);
    expect(gatewayView(loop).order).toEqual(['f', 'g', 'model']);
    expect(() => planDeployment([loop], { root: path.dirname(loop.file) })).toThrow(/stage 'f'.*placement: with_model, but no ONNX stage's function can run it/);
    // A conditional model: the gateway gives the items it skips the otherwise tensor, and post must run on those too.
    const gated = await load(`
name: gated
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: out, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: cheap, kind: function, module: stages/f.ts, inputs: [x], outputs: [{ name: quick, datatype: FP32, shape: [-1, 3] }, { name: unsure, datatype: BOOL, shape: [-1] }] }
  - { name: model, kind: onnx, weights: ${W('b')}, inputs: { x: x }, when: unsure, otherwise: { y: quick }, outputs: { y: raw } }
  - { name: post, kind: function, module: stages/f.ts, placement: with_model, inputs: [raw], outputs: [{ name: out, datatype: FP32, shape: [-1, 2] }] }
`);
    expect(placeStages(gated).groups[0].colocated).toEqual([]);
    expect(() => planDeployment([gated], { root: path.dirname(gated.file) })).toThrow(/stage 'post'.*placement: with_model, but no ONNX stage's function can run it/);
    // Nor before it: a stage making the model's input and its condition would leave the gateway without the condition.
    const guarded = await load(`
name: guarded
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: raw, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: prep, kind: function, module: stages/f.ts, placement: with_model, inputs: [x], outputs: [{ name: t, datatype: FP32, shape: [-1, 4] }, { name: unsure, datatype: BOOL, shape: [-1] }, { name: quick, datatype: FP32, shape: [-1, 2] }] }
  - { name: model, kind: onnx, weights: ${W('b')}, inputs: { x: t }, when: unsure, otherwise: { y: quick }, outputs: { y: raw } }
`);
    expect(placeStages(guarded).groups[0].colocated).toEqual([]);
    expect(gatewayView(guarded)).toBe(guarded);
  });

  it('refuses a placement that is not one of auto, with_model, gateway, and on an onnx stage', async () => {
    await expect(load(PIPE.replace('  - name: pre\n    kind: function\n', '  - name: pre\n    kind: function\n    placement: lambda\n'))).rejects.toThrow(/placement: expected one of auto, with_model, gateway, got lambda/);
    await expect(load(PIPE.replace('  - name: model\n    kind: onnx\n', '  - name: model\n    kind: onnx\n    placement: with_model\n'))).rejects.toThrow(/only function stages take a placement/);
  });

  it('keeps detect-pre (and decode) before detect and detect-post after it for OCR, and lists them in the plan with their module and sharp', async () => {
    const m = await loadManifest(path.join(REPO, 'models/ocr/pipeline.yaml'));
    const plan = planDeployment([m], { root: REPO });
    const detect = plan.stages.find((s) => s.stage === 'detect')!;
    expect(detect.colocated).toEqual([
      { stage: 'decode', mode: 'both' }, { stage: 'detect-pre', mode: 'moved' }, { stage: 'detect-post', mode: 'moved', after: true },
    ]);
    expect(detect.receives).toEqual(['image']);
    // The boxes come back; the probability map stays in the function, and det_scale, which only detect-post read, too.
    expect(detect.returns).toEqual(['boxes']);
    expect(detect.kept).toEqual(['det_prob']);
    expect(gatewayView(m).order).toEqual(['decode', 'detect', 'crop', 'classify', 'cls-post', 'recognize', 'ctc-decode', 'filter-lines']);
    expect(detect.stageModules).toEqual(['models/ocr/stages/decode.ts', 'models/ocr/stages/detect-pre.ts', 'models/ocr/stages/detect-post.ts']);
    expect(detect.install).toContain('sharp');
    // The line stages' pre-processing is placed by the manifest (placement: with_model): the crops cross, not the floats.
    const byStage = (name: string) => plan.stages.find((x) => x.stage === name)!;
    expect(byStage('classify').colocated).toEqual([{ stage: 'cls-pre', mode: 'moved' }]);
    expect(byStage('classify').receives).toEqual(['line']);
    expect(byStage('recognize').colocated).toEqual([{ stage: 'rec-pre', mode: 'moved' }]);
    expect(byStage('recognize').receives).toEqual(['line_upright']);
    // cls-pre makes 3x48x192 of any crop, rec-pre 3x48xW padded along recognize's pad axis: the crops batch in any
    // shapes. detect-pre's input keeps the page's size.
    const view = gatewayView(m);
    const anyShapes = (name: string) => view.stages.find((s) => s.name === name)!.anyShapes;
    expect([anyShapes('classify'), anyShapes('recognize'), anyShapes('detect')]).toEqual([true, true, undefined]);
  });
});
