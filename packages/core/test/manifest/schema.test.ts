import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { expectManifestError, removePipelines, STAGE_MODULE, writePipeline } from './helpers.js';

afterAll(removePipelines);

const SHA = 'ab'.repeat(32);

/** The docs/manifest.md example, trimmed: two onnx branches averaged by a function stage. */
function demo(overrides: { top?: string; branchA?: string; name?: string; inputShape?: string } = {}): string {
  return `name: ${overrides.name ?? 'demo'}
version: 1.10
description: Two small models whose outputs are averaged.
${overrides.top ?? ''}
inputs:
  - name: x
    datatype: FP32
    shape: ${overrides.inputShape ?? '[-1, 4]'}
outputs:
  - { name: y, datatype: FP32, shape: [-1, 3] }

defaults:
  batch: { max_delay_ms: 2, max_size: 4 }
  scale: { memory_mb: 2048 }

stages:
  - name: branch_a
    kind: onnx
    weights: { key: demo/branch_a.onnx, sha256: ${SHA.toUpperCase()}, source: build/branch_a.onnx }
    inputs: { input: x }
    outputs: { output: a }
    batch:
      max_size: 8
${overrides.branchA ?? ''}
  - name: branch_b
    kind: onnx
    weights: { key: demo/branch_b.onnx, sha256: ${SHA} }
    inputs: { input: x }
    outputs: { output: b }
    session: { graph_optimization: basic }
    timeout_ms: 5000

  - name: average
    kind: function
    module: stages/average.ts
    inputs: [a, b]
    outputs:
      - { name: y, datatype: FP32, shape: [-1, 3] }
    options: { weights: [0.5, 0.5] }
`;
}

const files = { 'stages/average.ts': STAGE_MODULE };

describe('manifest schema', () => {
  it('fills defaults, merges the defaults block and resolves paths', async () => {
    const { dir, file } = await writePipeline(demo(), files);
    const m = await loadManifest(file);
    expect(m.name).toBe('demo');
    expect(m.version).toBe('1.10');
    expect(m.file).toBe(file);
    expect(m.dir).toBe(dir);
    expect(m.maxRequestBytes).toBe(16 * 1024 * 1024);
    expect(m.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 4] }]);

    const [a, b, avg] = m.stages;
    expect(a).toMatchObject({
      kind: 'onnx',
      inputs: { input: 'x' },
      outputs: { output: 'a' },
      // The stage's own max_size wins over defaults; max_delay_ms comes from defaults.
      batch: { maxSize: 8, maxDelayMs: 2, maxQueue: 1024, queueFromServiceRate: true, queueTimeoutMs: 30000, padValue: 0 },
      scale: { instances: 1, threads: 1, memoryMb: 2048 },
      timeoutMs: 30000,
      session: { graphOptimization: 'all' },
      weights: { key: 'demo/branch_a.onnx', sha256: SHA, source: join(dir, 'build/branch_a.onnx') },
      options: {},
    });
    expect(a.batch.padAxis).toBeUndefined();
    expect(b).toMatchObject({ batch: { maxSize: 4, maxDelayMs: 2 }, timeoutMs: 5000, session: { graphOptimization: 'basic' } });
    expect(b.kind === 'onnx' && b.weights.source).toBeUndefined();
    expect(avg).toMatchObject({
      kind: 'function',
      module: join(dir, 'stages/average.ts'),
      fanout: false,
      inputs: { a: 'a', b: 'b' },
      outputs: { y: 'y' },
      options: { weights: [0.5, 0.5] },
    });
  });

  it('rejects a typo at the top level, with a suggestion and the line', async () => {
    const { file } = await writePipeline(demo({ top: 'max_request_bytse: 100' }), files);
    const err = await expectManifestError(() => loadManifest(file), file, 'pipeline', 'max_request_bytse',
      'unknown key (did you mean max_request_bytes?)');
    expect(err.message).toMatch(/\(line 4\)$/);
  });

  it("rejects a typo inside a stage's batch, naming the stage", async () => {
    const { file } = await writePipeline(demo({ branchA: '      max_szie: 8' }), files);
    const err = await expectManifestError(() => loadManifest(file), file, "stage 'branch_a'", 'batch.max_szie');
    const line = demo({ branchA: '      max_szie: 8' }).split('\n').findIndex((l) => l.includes('max_szie')) + 1;
    expect(err.message).toBe(`${file}: stage 'branch_a': batch.max_szie: unknown key (did you mean max_size?) (line ${line})`);
  });

  it('rejects a key that belongs to the other stage kind', async () => {
    const { file } = await writePipeline(demo({ branchA: '    fanout: true' }), files);
    await expectManifestError(() => loadManifest(file), file, "stage 'branch_a'", 'fanout', 'only function stages');
  });

  it('rejects wrong types', async () => {
    const { file } = await writePipeline(demo({ branchA: '      max_delay_ms: soon' }), files);
    await expectManifestError(() => loadManifest(file), file, "stage 'branch_a'", 'batch.max_delay_ms',
      "expected a number, got the string 'soon'");
    const bad = await writePipeline(demo({ branchA: '    scale: { instances: 1.5 }' }), files);
    await expectManifestError(() => loadManifest(bad.file), bad.file, "stage 'branch_a'", 'scale.instances', 'expected an integer');
  });

  it('reads scale.isolation (absent means worker processes) and rejects an unknown placement', async () => {
    const { file } = await writePipeline(demo({ branchA: '    scale: { isolation: inline }' }), files);
    const m = await loadManifest(file);
    expect(m.stages[0].scale.isolation).toBe('inline');
    expect(m.stages[1].scale.isolation).toBeUndefined();
    const bad = await writePipeline(demo({ branchA: '    scale: { isolation: thread }' }), files);
    await expectManifestError(() => loadManifest(bad.file), bad.file, "stage 'branch_a'", 'scale.isolation',
      'expected one of process, inline');
  });

  it('reads scale.threads: auto as this machine\'s cores, and a number given after it in defaults as that number', async () => {
    const { file } = await writePipeline(demo({ branchA: '    scale: { threads: auto }' }), files);
    const m = await loadManifest(file);
    expect(m.stages[0].scale).toMatchObject({ threads: availableParallelism(), autoThreads: true });
    expect(m.stages[1].scale.threads).toBe(1);
    expect(m.stages[1].scale.autoThreads).toBeUndefined();
    const text = demo({ branchA: '    scale: { threads: 3 }' }).replace('scale: { memory_mb: 2048 }', 'scale: { memory_mb: 2048, threads: auto }');
    const both = await loadManifest((await writePipeline(text, files)).file);
    expect(both.stages[0].scale.threads).toBe(3);
    expect(both.stages[0].scale.autoThreads).toBeUndefined();
    expect(both.stages[1].scale).toMatchObject({ threads: availableParallelism(), autoThreads: true });
    const bad = await writePipeline(demo({ branchA: '    scale: { threads: many }' }), files);
    await expectManifestError(() => loadManifest(bad.file), bad.file, "stage 'branch_a'", 'scale.threads',
      "expected an integer >= 1 or auto, got 'many'");
  });

  it('rejects a bad pipeline name', async () => {
    const { file } = await writePipeline(demo({ name: 'Demo_Pipeline' }), files);
    await expectManifestError(() => loadManifest(file), file, 'pipeline', 'name', "'Demo_Pipeline' is not a valid pipeline name");
  });

  it('rejects a pipeline input whose dim 0 is not -1', async () => {
    const { file } = await writePipeline(demo({ inputShape: '[1, 4]' }), files);
    await expectManifestError(() => loadManifest(file), file, 'pipeline', 'inputs[0].shape[0]', "tensor 'x': dim 0 must be -1");
  });

  it('rejects a function stage whose module file is missing', async () => {
    const { dir, file } = await writePipeline(demo(), {});
    await expectManifestError(() => loadManifest(file), file, "stage 'average'", 'module',
      `file not found: ${join(dir, 'stages/average.ts')}`);
  });

  it('rejects an unknown datatype with a suggestion', async () => {
    const yaml = demo().replace('  - { name: y, datatype: FP32, shape: [-1, 3] }\n\ndefaults', '  - { name: y, datatype: fp32, shape: [-1, 3] }\n\ndefaults');
    const { file } = await writePipeline(yaml, files);
    await expectManifestError(() => loadManifest(file), file, 'pipeline', 'outputs[0].datatype', 'did you mean FP32?');
  });

  it('rejects a malformed sha256 and a duplicate stage name', async () => {
    const short = await writePipeline(demo().replace(`sha256: ${SHA}`, 'sha256: abc'), files);
    await expectManifestError(() => loadManifest(short.file), short.file, "stage 'branch_b'", 'weights.sha256', '64 hex characters');
    const twice = await writePipeline(demo().replace('name: branch_b', 'name: branch_a'), files);
    await expectManifestError(() => loadManifest(twice.file), twice.file, "stage 'branch_a'", 'name', 'used twice');
  });

  it('reports invalid YAML with its line', async () => {
    const { file } = await writePipeline('name: demo\ninputs: [x\n', files);
    // A syntax error has no field yet: `<file>: pipeline: invalid YAML: ... (line N)`.
    await expectManifestError(() => loadManifest(file), file, 'pipeline', 'invalid YAML', /\(line \d+\)$/);
  });

  it('reads per_request inputs and batch axes onto the tensors and the stages that use them', async () => {
    const yaml = `name: vad
inputs:
  - { name: x, datatype: FP32, shape: [-1, 8] }
  - { name: sr, datatype: INT64, shape: [], per_request: true }
  - { name: state, datatype: FP32, shape: [2, -1, 4], batch_axis: 1 }
outputs:
  - { name: state_out, datatype: FP32, shape: [2, -1, 4], batch_axis: 1 }
stages:
  - name: model
    kind: onnx
    weights: { key: vad/model.onnx, sha256: ${SHA} }
    inputs: { input: x, sr: sr, state: state }
    outputs: { stateN: state_out }
`;
    const { file } = await writePipeline(yaml);
    const m = await loadManifest(file);
    expect(m.inputs[1]).toEqual({ name: 'sr', datatype: 'INT64', shape: [], perRequest: true });
    expect(m.inputs[2].batchAxis).toBe(1);
    expect(m.stages[0]).toMatchObject({ perRequest: ['sr'], inputAxes: { state: 1 }, outputAxes: { stateN: 1 } });

    const fixedAxis = await writePipeline(yaml.replace('shape: [2, -1, 4], batch_axis: 1 }\noutputs', 'shape: [2, 3, 4], batch_axis: 1 }\noutputs'));
    await expectManifestError(() => loadManifest(fixedAxis.file), fixedAxis.file, 'pipeline', 'inputs[2].shape[1]', 'dim 1 (its batch_axis) must be -1');
    const outOfRange = await writePipeline(yaml.replace('batch_axis: 1 }\noutputs', 'batch_axis: 3 }\noutputs'));
    await expectManifestError(() => loadManifest(outOfRange.file), outOfRange.file, 'pipeline', 'inputs[2].batch_axis', 'not an axis of its shape');
    const both = await writePipeline(yaml.replace('per_request: true', 'per_request: true, batch_axis: 0'));
    await expectManifestError(() => loadManifest(both.file), both.file, 'pipeline', 'inputs[1].batch_axis', 'no batch axis');
    const scalar = await writePipeline(yaml.replace(', per_request: true', ''));
    await expectManifestError(() => loadManifest(scalar.file), scalar.file, 'pipeline', 'inputs[1].shape', 'per_request: true');
  });
});
