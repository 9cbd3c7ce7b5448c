import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { localWeights } from '../../src/tune/capture.js';
import { addModel, sha256Hex } from '../../../core/test/fixtures/models.js';

let dir: string;
const model = addModel();

async function manifestPinning(sha256: string): Promise<Manifest> {
  await writeFile(join(dir, 'pipeline.yaml'), `
name: pinned
inputs: [{ name: a, datatype: FP32, shape: [-1, 2] }, { name: b, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: add, kind: onnx, weights: { key: pinned/add.onnx, sha256: ${sha256}, source: add.onnx }, inputs: { a: a, b: b }, outputs: { sum: y } }
`);
  return loadManifest(join(dir, 'pipeline.yaml'));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-local-weights-'));
  await writeFile(join(dir, 'add.onnx'), model);
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('the weights tune and bench read from weights.source', () => {
  it('resolves a file whose bytes match the manifest', async () => {
    const m = await manifestPinning(sha256Hex(model));
    expect(await localWeights(m).resolve('pinned/add.onnx', sha256Hex(model))).toBe(join(dir, 'add.onnx'));
  });

  it('refuses a file whose bytes changed, naming both hashes', async () => {
    const pinned = '0'.repeat(64);
    const m = await manifestPinning(pinned);
    await expect(localWeights(m).resolve('pinned/add.onnx', pinned)).rejects.toThrow(new RegExp(`sha256 ${sha256Hex(model)}.*pins ${pinned}`));
  });
});
