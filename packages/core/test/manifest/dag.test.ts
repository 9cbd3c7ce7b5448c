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

describe('manifest: ragged outputs, companions and conditions', () => {
  const yaml = (outputs: string, stages: string[]) => [
    'name: rules', 'inputs:', '  - { name: x, datatype: FP32, shape: [-1, 4] }', 'outputs:', outputs, 'stages:',
    ...stages.map((s) => `  - { kind: function, module: stages/f.ts, ${s} }`), '',
  ].join('\n');
  const loadYaml = async (text: string) => {
    const { file } = await writePipeline(text, { 'stages/f.ts': STAGE_MODULE });
    return { file, run: () => loadManifest(file) };
  };

  it('refuses an output with a free dimension beyond dim 0, saying what to declare', async () => {
    const { file, run } = await loadYaml(yaml('  - { name: y, datatype: FP32, shape: [-1, -1] }', ['name: s, inputs: [x], outputs: [y]']));
    await expectManifestError(run, file, 'pipeline', 'outputs[0].shape', "'y'", 'ragged: { pad_value: 0, lengths: y_shape }');
  });

  it('accepts it with ragged, adding the lengths and row index companions after it', async () => {
    const { run } = await loadYaml(yaml('  - { name: y, datatype: FP32, shape: [-1, -1], ragged: { lengths: y_len }, row_index: y_row }', ['name: s, inputs: [x], outputs: [y]']));
    const m = await run();
    expect(m.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([['y', 'FP32', [-1, -1]], ['y_len', 'INT64', [-1, 1]], ['y_row', 'INT64', [-1]]]);
    expect(m.outputs[0].ragged).toEqual({ padValue: 0, lengths: 'y_len' });
  });

  it('refuses a companion named like another tensor', async () => {
    const { file, run } = await loadYaml(yaml('  - { name: y, datatype: FP32, shape: [-1, 4], row_index: x }', ['name: s, inputs: [x], outputs: [y]']));
    await expectManifestError(run, file, 'pipeline', 'outputs[1].name', "companion of output 'y'");
  });

  it('gives sibling fan-outs lineages of their own', async () => {
    const { run } = await load([
      'name: f1, inputs: [x], outputs: [p], fanout: true',
      'name: f2, inputs: [x], outputs: [q], fanout: true',
      'name: a, inputs: [p], outputs: [y]',
      'name: b, inputs: [q], outputs: [z]',
    ], { outputs: ['y', 'z'] });
    const m = await run();
    expect(m.lineage).toMatchObject({ x: [], p: ['f1'], q: ['f2'], y: ['f1'], z: ['f2'] });
  });

  it('refuses a condition without otherwise, naming the outputs to cover', async () => {
    const { file, run } = await load(['name: c, inputs: [x], outputs: [flag]', 'name: s, inputs: [x], outputs: [y], when: flag']);
    await expectManifestError(run, file, "stage 's'", 'when', 'otherwise', 'y');
  });

  it('refuses an otherwise that misses an output or names one the stage lacks', async () => {
    const a = await load(['name: c, inputs: [x], outputs: [flag, alt]', 'name: s, inputs: [x], outputs: [y, w], when: flag, otherwise: { y: alt }'], { outputs: ['y', 'w'] });
    await expectManifestError(a.run, a.file, "stage 's'", 'otherwise', "output 'w'");
    const b = await load(['name: c, inputs: [x], outputs: [flag, alt]', 'name: s, inputs: [x], outputs: [y], when: flag, otherwise: { yy: alt }']);
    await expectManifestError(b.run, b.file, "stage 's'", 'otherwise.yy', "did you mean 'y'");
  });

  it('refuses a condition tensor nobody produces, a BYTES condition, and a conditional fan-out', async () => {
    const a = await load(['name: s, inputs: [x], outputs: [y], when: flg, otherwise: { y: x }']);
    await expectManifestError(a.run, a.file, "stage 's'", 'when', "'flg' is not produced");
    const b = await loadYaml(yaml('  - { name: y, datatype: FP32, shape: [-1, 4] }', [
      'name: c, inputs: [x], outputs: [{ name: flag, datatype: BYTES, shape: [-1] }, alt]',
      'name: s, inputs: [x], outputs: [y], when: flag, otherwise: { y: alt }',
    ]));
    await expectManifestError(b.run, b.file, "stage 's'", 'when', 'BYTES');
    const c = await load(['name: c, inputs: [x], outputs: [flag]', 'name: s, inputs: [x], outputs: [y], fanout: true, when: flag, otherwise: { y: x }']);
    await expectManifestError(c.run, c.file, "stage 's'", 'when', 'fan-out stage cannot be conditional');
  });

  it('refuses an otherwise tensor of another datatype than the output it stands for', async () => {
    const { file, run } = await loadYaml(yaml('  - { name: y, datatype: FP32, shape: [-1, 4] }', [
      'name: c, inputs: [x], outputs: [{ name: flag, datatype: BOOL, shape: [-1] }, { name: alt, datatype: INT32, shape: [-1, 4] }]',
      'name: s, inputs: [x], outputs: [y], when: flag, otherwise: { y: alt }',
    ]));
    await expectManifestError(run, file, "stage 's'", 'otherwise.y', 'INT32 vs FP32');
  });
});
