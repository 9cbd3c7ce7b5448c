/**
 * The batch dimension of Triton's model configuration: a pipeline (or stage)
 * that counts items on dim 0 of every tensor, and whose inputs have dims of
 * their own besides, has max_batch_size > 0 and dims without it; one with a
 * per-request input, another batch axis or an input of one value per item
 * has max_batch_size 0 and its full shapes, so a client that adds the batch
 * dim itself never builds a request with one dim too many or too few.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { pipelineConfig, stageConfig, stageMetadata } from '../../src/http/model-config.js';

let root: string;
beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'ensemble-config-')); });
afterAll(async () => { await rm(root, { recursive: true, force: true }); });

async function manifestOf(yaml: string) {
  const dir = join(root, String(Math.random()).slice(2));
  await mkdir(join(dir, 'stages'), { recursive: true });
  await writeFile(join(dir, 'stages', 'f.ts'), 'export default { process: (item: any) => item };\n');
  await writeFile(join(dir, 'pipeline.yaml'), yaml);
  return loadManifest(join(dir, 'pipeline.yaml'));
}

describe('model configuration', () => {
  it('gives a batch-major pipeline max_items as max_batch_size and dims without the item dim', async () => {
    const m = await manifestOf(`name: rows
max_items: 64
inputs:
  - { name: x, datatype: FP32, shape: [-1, 4] }
  - { name: s, datatype: BYTES, shape: [-1, 1] }
outputs:
  - { name: y, datatype: INT64, shape: [-1, 2, -1], ragged: { pad_value: 0 } }
stages:
  - name: f
    kind: function
    module: stages/f.ts
    inputs: [x, s]
    outputs:
      - { name: y, datatype: INT64, shape: [-1, 2, -1] }
    batch: { max_size: 8, max_delay_ms: 1.5 }
`);
    const c = pipelineConfig(m);
    expect(c).toMatchObject({ name: 'rows', platform: 'ensemble', max_batch_size: 64 });
    expect(c.input).toEqual([
      expect.objectContaining({ name: 'x', data_type: 'TYPE_FP32', dims: [4] }),
      expect.objectContaining({ name: 's', data_type: 'TYPE_STRING', dims: [1] }),
    ]);
    expect(c.input[1].reshape).toBeUndefined();
    expect(c.output).toEqual([expect.objectContaining({ name: 'y', data_type: 'TYPE_INT64', dims: [2, -1] })]);
    expect(c.ensemble_scheduling?.step).toEqual([{ model_name: 'rows.f', model_version: 1, input_map: { x: 'x', s: 's' }, output_map: { y: 'y' } }]);
    expect(c.dynamic_batching).toBeUndefined();

    const f = stageConfig(m, m.stages[0]);
    expect(f).toMatchObject({
      name: 'rows.f', platform: 'function', max_batch_size: 8,
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 1500 },
      instance_group: [{ kind: 'KIND_CPU', count: 1 }],
    });
    expect(f.ensemble_scheduling).toBeUndefined();
    expect(stageMetadata(m, m.stages[0])).toEqual({
      name: 'rows.f', versions: ['1'], platform: 'function',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }, { name: 's', datatype: 'BYTES', shape: [-1, 1] }],
      outputs: [{ name: 'y', datatype: 'INT64', shape: [-1, 2, -1] }],
    });
  });

  it('gives a pipeline with a per-request input or another batch axis no batch dim (max_batch_size 0, full shapes)', async () => {
    const m = await manifestOf(`name: axes
inputs:
  - { name: x, datatype: FP32, shape: [-1, 3] }
  - { name: k, datatype: FP32, shape: [], per_request: true }
  - { name: s, datatype: FP32, shape: [2, -1, 3], batch_axis: 1 }
outputs:
  - { name: y, datatype: FP32, shape: [-1, 3] }
stages:
  - name: f
    kind: function
    module: stages/f.ts
    inputs: [x, k, s]
    outputs:
      - { name: y, datatype: FP32, shape: [-1, 3] }
`);
    const c = pipelineConfig(m);
    expect(c.max_batch_size).toBe(0);
    expect(c.input.map((i) => [i.name, i.dims])).toEqual([['x', [-1, 3]], ['k', [1]], ['s', [2, -1, 3]]]);
    expect(c.input[1].reshape).toEqual({ shape: [] });
    expect(stageConfig(m, m.stages[0]).max_batch_size).toBe(0);
  });

  it('keeps the item dim of an input with no dims of its own (one value per item): Triton has no input without dims', async () => {
    const m = await manifestOf(`name: scalars
inputs:
  - { name: s, datatype: BYTES, shape: [-1] }
outputs:
  - { name: y, datatype: FP32, shape: [-1] }
stages:
  - name: f
    kind: function
    module: stages/f.ts
    inputs: [s]
    outputs:
      - { name: y, datatype: FP32, shape: [-1] }
    batch: { max_size: 4 }
`);
    const c = pipelineConfig(m);
    expect(c.max_batch_size).toBe(0);
    expect(c.input).toEqual([expect.objectContaining({ name: 's', data_type: 'TYPE_STRING', dims: [-1] })]);
    expect(c.output).toEqual([expect.objectContaining({ name: 'y', dims: [-1] })]);
    expect(stageConfig(m, m.stages[0])).toMatchObject({ max_batch_size: 0, input: [{ dims: [-1] }], dynamic_batching: { preferred_batch_size: [4] } });
  });
});
