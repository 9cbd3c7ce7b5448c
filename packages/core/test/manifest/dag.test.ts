import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { expectManifestError, removePipelines, STAGE_MODULE, writePipeline } from './helpers.js';

afterAll(removePipelines);

/** A pipeline of function stages; each stage line is a flow mapping without `kind`/`module`. */
function pipeline(stages: string[], io: { inputs?: string[]; outputs?: string[] } = {}): string {
  const tensor = (name: string) => `  - { name: ${name}, datatype: FP32, shape: [-1, 4] }`;
  return [
    'name: dag-test',
    'inputs:',
    ...(io.inputs ?? ['x']).map(tensor),
    'outputs:',
    ...(io.outputs ?? ['y']).map(tensor),
    'stages:',
    ...stages.map((s) => `  - { kind: function, module: stages/f.ts, ${s} }`),
    '',
  ].join('\n');
}

async function load(stages: string[], io?: { inputs?: string[]; outputs?: string[] }) {
  const { file } = await writePipeline(pipeline(stages, io), { 'stages/f.ts': STAGE_MODULE });
  return { file, run: () => loadManifest(file) };
}

describe('manifest DAG', () => {
  it('orders stages topologically and assigns fan-out levels', async () => {
    // Written out of order on purpose; ties resolve in manifest order.
    const { run } = await load([
      'name: decode, inputs: [logits, image], outputs: [text]',
      'name: rec, inputs: { x: crop }, outputs: { out: { name: logits, datatype: FP16, shape: [-1, 10, 5] } }',
      'name: words, inputs: [text], outputs: [word], fanout: true',
      'name: summary, inputs: [probs], outputs: [score]',
      'name: boxes, inputs: [image, probs], outputs: [crop, box], fanout: true',
      'name: det, inputs: [image], outputs: [probs]',
    ], { inputs: ['image'], outputs: ['text', 'box', 'word', 'score'] });
    const m = await run();
    expect(m.order).toEqual(['det', 'summary', 'boxes', 'rec', 'decode', 'words']);
    expect(m.levels).toEqual({ image: 0, probs: 0, score: 0, crop: 1, box: 1, logits: 1, text: 1, word: 2 });
    // Statically known: pipeline inputs and outputs, and the typed function output.
    expect(Object.keys(m.tensors).sort()).toEqual(['box', 'image', 'logits', 'score', 'text', 'word']);
    expect(m.tensors.image).toEqual({ name: 'image', datatype: 'FP32', shape: [-1, 4] });
    expect(m.tensors.logits).toEqual({ name: 'logits', datatype: 'FP16', shape: [-1, 10, 5] });
    expect(m.stages.find((s) => s.name === 'rec')).toMatchObject({ inputs: { x: 'crop' }, outputs: { out: 'logits' } });
    expect(m.stages.find((s) => s.name === 'words')).toMatchObject({ kind: 'function', fanout: true });
  });

  it('rejects a cycle and names the stages in it', async () => {
    const { file, run } = await load([
      'name: s1, inputs: [x, c], outputs: [a]',
      'name: s2, inputs: [a], outputs: [b]',
      'name: s3, inputs: [b], outputs: [c, y]',
    ]);
    await expectManifestError(run, file, "stage 's1'", 'inputs.c', 'closes a cycle between stages: s1 -(a)-> s2 -(b)-> s3 -(c)-> s1');
  });

  it('rejects a stage that reads its own output', async () => {
    const { file, run } = await load(['name: loop, inputs: [x, y], outputs: [y]']);
    await expectManifestError(run, file, "stage 'loop'", 'inputs.y', 'loop -(y)-> loop');
  });

  it('rejects a tensor nobody produces', async () => {
    const { file, run } = await load(['name: s1, inputs: { in: x, extra: missing }, outputs: [y]']);
    await expectManifestError(run, file, "stage 's1'", 'inputs.extra', "tensor 'missing' is not produced by any stage or pipeline input");
  });

  it('rejects two producers of one tensor', async () => {
    const { file, run } = await load([
      'name: s1, inputs: [x], outputs: [h]',
      'name: s2, inputs: [x], outputs: { out: h }',
      'name: s3, inputs: [h], outputs: [y]',
    ]);
    await expectManifestError(run, file, "stage 's2'", 'outputs.out', "tensor 'h' is already produced by stage 's1'");
  });

  it('rejects a stage output named like a pipeline input', async () => {
    const { file, run } = await load(['name: s1, inputs: [x], outputs: [y, x]']);
    await expectManifestError(run, file, "stage 's1'", 'outputs.x', 'already produced by the pipeline input');
  });

  it('rejects an output nobody consumes', async () => {
    const { file, run } = await load(['name: s1, inputs: [x], outputs: [y, debug]']);
    await expectManifestError(run, file, "stage 's1'", 'outputs.debug', "tensor 'debug' is never used: nobody consumes it");
  });

  it('rejects a pipeline output no stage produces', async () => {
    const { file, run } = await load(['name: s1, inputs: [x], outputs: [y]'], { outputs: ['y', 'z'] });
    await expectManifestError(run, file, 'pipeline', 'outputs[1].name', "pipeline output 'z' is not produced by any stage");
  });

  it('rejects a pipeline input nobody reads', async () => {
    const { file, run } = await load(['name: s1, inputs: [x], outputs: [y]'], { inputs: ['x', 'unused'] });
    await expectManifestError(run, file, 'pipeline', 'inputs[1].name', "pipeline input 'unused' is never used");
  });

  it('rejects a stage joining items of two unrelated fan-outs', async () => {
    const { file, run } = await load([
      'name: f1, inputs: [x], outputs: [p], fanout: true',
      'name: f2, inputs: [x], outputs: [q], fanout: true',
      'name: join, inputs: [p, q], outputs: [y]',
    ]);
    await expectManifestError(run, file, "stage 'join'", 'inputs.q', "'f2'", "'f1'", 'one lineage');
  });

  it('rejects a typed stage output that contradicts the pipeline output', async () => {
    const { file, run } = await load(['name: s1, inputs: [x], outputs: [{ name: y, datatype: FP32, shape: [-1, 5] }]']);
    await expectManifestError(run, file, "stage 's1'", 'outputs.y', 'dim 1 is 5 vs 4');
  });
});
