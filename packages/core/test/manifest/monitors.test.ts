import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { displayPath } from '../../src/manifest/locator.js';
import { expectManifestError, removePipelines, STAGE_MODULE, writePipeline } from './helpers.js';

afterAll(removePipelines);

/** A pipeline whose input `x` (or the given input/output block) carries `monitors`. */
const yaml = (monitors: string, x = 'FP32', extra = '') => `
name: p
inputs:
  - name: x
    datatype: ${x}
    shape: [-1, 4]
    monitors: ${monitors}
outputs: [{ name: y, datatype: FP32, shape: [-1, -1], ragged: { pad_value: -1 }${extra} }]
stages:
  - { name: s, kind: function, module: s.ts, inputs: [x], outputs: [y] }
`;

async function refused(monitors: string, field: string, also: string, opts: { x?: string; extra?: string; files?: Record<string, string> } = {}) {
  const { file } = await writePipeline(yaml(monitors, opts.x, opts.extra), { 's.ts': STAGE_MODULE, ...opts.files });
  await expectManifestError(() => loadManifest(file), displayPath(file), opts.extra ? "output 'y'" : "input 'x'", field, also);
}

describe('monitors in the manifest', () => {
  it('reads each rule with its defaults filled', async () => {
    const { file } = await writePipeline(yaml(`
      - { rule: range, min: 0, max: 1, action: reject }
      - { rule: finite }
      - { rule: shape, max_shape: [-1, 4], max_elements: 4 }
      - { rule: drift, stat: histogram, bins: 10, min: 0, max: 1 }
      - { rule: drift, stat: mean, threshold: 0.5, window: 50 }`), { 's.ts': STAGE_MODULE });
    const m = await loadManifest(file);
    expect(m.inputs[0].monitors).toEqual([
      { rule: 'range', action: 'reject', min: 0, max: 1 },
      { rule: 'finite', action: 'record' },
      { rule: 'shape', action: 'record', maxShape: [-1, 4], maxElements: 4 },
      { rule: 'drift', action: 'record', stat: 'histogram', window: 1000, threshold: 0.25, bins: { min: 0, max: 1, count: 10 }, reference: { kind: 'window' } },
      { rule: 'drift', action: 'record', stat: 'mean', window: 50, threshold: 0.5, reference: { kind: 'window' } },
    ]);
  });

  it('refuses rules that cannot apply, naming the file, the tensor and the field', async () => {
    await refused('[{ rule: rnage }]', 'monitors[0].rule', 'expected one of range, finite, shape, drift, got rnage');
    await refused('[{ rule: range }]', 'monitors[0]', 'needs min, max or both');
    await refused('[{ rule: range, min: 2, max: 1 }]', 'monitors[0].max', '1 is below min 2');
    await refused('[{ rule: range, max: 1, action: drop }]', 'monitors[0].action', 'expected one of record, reject');
    await refused('[{ rule: range, max: 1, limit: 3 }]', 'monitors[0].limit', 'unknown key');
    await refused('[{ rule: finite }]', 'monitors[0].rule', 'is INT32: only FP16, FP32 and FP64', { x: 'INT32' });
    await refused('[{ rule: range, max: 1 }]', 'monitors[0].rule', 'is BYTES', { x: 'BYTES' });
    await refused('[{ rule: shape, max_length: 3 }]', 'monitors[0].max_length', 'lengths bound BYTES elements');
    await refused('[{ rule: shape, max_shape: [-1] }]', 'monitors[0].max_shape', 'has 1 dimensions');
    await refused('[{ rule: shape, max_shape: [8, 4] }]', 'monitors[0].max_shape[0]', 'counts the items');
    await refused('[{ rule: shape }]', 'monitors[0]', 'needs a bound');
    await refused('[{ rule: drift, stat: mean }]', 'monitors[0].threshold', 'required');
    await refused('[{ rule: drift, stat: mean, threshold: 1, action: reject }]', 'monitors[0].action', 'its action is record');
    await refused('[{ rule: drift, stat: histogram, min: 0, max: 1 }]', 'monitors[0].bins', 'required for a histogram');
    await refused('[{ rule: drift, stat: mean, threshold: 1, bins: 3 }]', 'monitors[0].bins', 'only a histogram has bins');
    await refused('[{ rule: drift, stat: mean, threshold: 1, window: 1000000 }]', 'monitors[0].window', 'must be <= 100000');
    // A ragged output's padding is not data.
    await refused('[]', 'monitors[0].rule', 'is ragged', { extra: ', monitors: [{ rule: range, max: 1 }]' });
  });

  it('reads a reference file and refuses one that does not fit the monitor', async () => {
    const ref = (tensors: unknown) => JSON.stringify({ pipeline: 'p', sources: [], tensors });
    const mon = '[{ rule: drift, stat: histogram, bins: 2, min: 0, max: 1, reference: file, file: ref.json }]';
    const good = { x: { items: 2, values: 8, mean: 0.5, std: 0.1, histograms: [{ bins: { min: 0, max: 1, count: 2 }, counts: [0, 4, 4, 0] }] } };
    const { file } = await writePipeline(yaml(mon), { 's.ts': STAGE_MODULE, 'ref.json': ref(good) });
    const m = await loadManifest(file);
    expect(m.inputs[0].monitors?.[0]).toMatchObject({ reference: { kind: 'file', stats: { items: 2, values: 8, mean: 0.5, std: 0.1, histogram: [0, 4, 4, 0] } } });

    await refused(mon, 'monitors[0].file', 'cannot read the reference');
    await refused(mon, 'monitors[0].file', "has no statistics for tensor 'x'", { files: { 'ref.json': ref({ z: good.x }) } });
    await refused(mon, 'monitors[0].file', 'no histogram of 2 bins over [0, 1]', { files: { 'ref.json': ref({ x: { ...good.x, histograms: [] } }) } });
    await refused(mon, 'monitors[0].file', 'needs 4 counts', { files: { 'ref.json': ref({ x: { ...good.x, histograms: [{ bins: { min: 0, max: 1, count: 2 }, counts: [1] }] } }) } });
    // Written by the command that reads the manifest first: with references not read, the manifest loads.
    const { file: bare } = await writePipeline(yaml(mon), { 's.ts': STAGE_MODULE });
    await expect(loadManifest(bare, { readReferences: false })).resolves.toBeDefined();
  });

  it('reads observers as paths or { module, options }, and refuses a missing module', async () => {
    const base = yaml('[]').replace('stages:', 'observers: [o.ts, { module: o.ts, options: { every: 2 } }]\nstages:');
    const { file, dir } = await writePipeline(base, { 's.ts': STAGE_MODULE, 'o.ts': 'export default { create: () => ({}) };' });
    const m = await loadManifest(file);
    expect(m.observers).toEqual([{ module: `${dir}/o.ts`, options: {} }, { module: `${dir}/o.ts`, options: { every: 2 } }]);
    const { file: missing } = await writePipeline(yaml('[]').replace('stages:', 'observers: [nope.ts]\nstages:'), { 's.ts': STAGE_MODULE });
    await expectManifestError(() => loadManifest(missing), displayPath(missing), 'pipeline', 'observers[0]', 'file not found');
  });
});
