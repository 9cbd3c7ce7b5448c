import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifest } from '../../src/manifest/load.js';
import { verifyManifest } from '../../src/manifest/verify.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { makeS3Client, settingsFromEnv } from '../../src/storage/config.js';
import { startLocalServices, withLocalServices, type LocalServices } from '@ensemble/tools/local/local-services.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { addModel, castModel, identityModel, scaleModel, sha256Hex, writeModel } from '../fixtures/models.js';
import { expectManifestError, removePipelines, writePipeline } from './helpers.js';

const BUCKET = 'weights';
let work: string;
let services: LocalServices;
let s3: S3Client;
let store: S3WeightStore;
let counter = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ensemble-verify-'));
  services = await startLocalServices({ dataDir: join(work, 'data') });
  s3 = makeS3Client(withLocalServices(settingsFromEnv({}, { bucket: BUCKET }), services));
  await ensureBucket(s3, BUCKET);
  store = new S3WeightStore({ s3, bucket: BUCKET, cacheDir: join(work, 'cache') });
});

afterAll(async () => {
  s3?.destroy();
  await services?.close();
  await removePipelines();
  await rm(work, { recursive: true, force: true });
});

interface Weights { key: string; sha256: string }

/** Writes the model and pushes it under a key of its own (unless `push` is false). */
async function weights(bytes: Uint8Array, push = true): Promise<Weights> {
  const name = `m${++counter}.onnx`;
  const { path, sha256 } = writeModel(join(work, 'models'), name, bytes);
  const key = `test/${name}`;
  if (push) await pushObject({ s3, bucket: BUCKET, key, file: path });
  return { key, sha256 };
}

function onnxStage(name: string, w: Weights, inputs: string, outputs: string, extra = ''): string {
  return `  - name: ${name}
    kind: onnx
    weights: { key: ${w.key}, sha256: ${w.sha256} }
    inputs: ${inputs}
    outputs: ${outputs}
${extra}`;
}

function pipeline(stages: string[], x = 'FP32, shape: [-1, 4]', y = 'FP32, shape: [-1, 4]'): string {
  return `name: verify-test
inputs:
  - { name: x, datatype: ${x} }
outputs:
  - { name: y, datatype: ${y} }
stages:
${stages.join('')}`;
}

async function load(stages: string[], x?: string, y?: string) {
  const { file } = await writePipeline(pipeline(stages, x, y));
  const m = await loadManifest(file);
  return { file, m, run: () => verifyManifest(m, store) };
}

describe('verifyManifest', () => {
  it('resolves weights, reads the models and types the ONNX outputs', async () => {
    const scale = await weights(scaleModel(2));
    const add = await weights(addModel(4));
    const { m, run } = await load([
      onnxStage('scale', scale, '{ x: x }', '{ y: h }', '    batch: { max_size: 8, pad_axis: 0 }\n'),
      onnxStage('add', add, '{ a: h, b: x }', '{ sum: y }'),
    ]);
    expect(m.tensors.h).toBeUndefined();
    const files = await run();
    expect(Object.keys(files).sort()).toEqual(['add', 'scale']);
    expect(sha256Hex(await readFile(files.scale))).toBe(scale.sha256);
    expect(sha256Hex(await readFile(files.add))).toBe(add.sha256);
    expect(m.tensors.h).toEqual({ name: 'h', datatype: 'FP32', shape: [-1, 4] });
    // The declared pipeline output keeps its spec.
    expect(m.tensors.y).toEqual({ name: 'y', datatype: 'FP32', shape: [-1, 4] });
  });

  it('rejects a datatype that differs from the model input', async () => {
    const w = await weights(scaleModel(2));
    const { file, run } = await load([onnxStage('scale', w, '{ x: x }', '{ y: y }')], 'INT32, shape: [-1, 4]');
    await expectManifestError(run, file, "stage 'scale'", 'inputs.x',
      "datatype mismatch: tensor 'x' INT32 [-1, 4] vs model input 'x' FP32 [batch, 4]");
  });

  it('rejects a rank that differs from the model input', async () => {
    const w = await weights(scaleModel(2));
    const { file, run } = await load([onnxStage('scale', w, '{ x: x }', '{ y: y }')], 'FP32, shape: [-1, 2, 2]', 'FP32, shape: [-1, 4]');
    await expectManifestError(run, file, "stage 'scale'", 'inputs.x', 'rank mismatch', 'has rank 3', 'has rank 2');
  });

  it('checks downstream stages against the types of upstream ONNX outputs', async () => {
    const cast = await weights(castModel('FP32', 'INT64', ['batch', 4]));
    const scale = await weights(scaleModel(2));
    const { file, run } = await load([
      onnxStage('cast', cast, '{ x: x }', '{ y: h }'),
      onnxStage('scale', scale, '{ x: h }', '{ y: y }'),
    ]);
    await expectManifestError(run, file, "stage 'scale'", 'inputs.x', "datatype mismatch: tensor 'h' INT64 [-1, 4] vs model input 'x' FP32");
  });

  it('rejects a pipeline output that contradicts the model output', async () => {
    const w = await weights(scaleModel(2));
    const { file, run } = await load([onnxStage('scale', w, '{ x: x }', '{ y: y }')], undefined, 'FP32, shape: [-1, 3]');
    await expectManifestError(run, file, "stage 'scale'", 'outputs.y', 'shape mismatch (dim 1 is 3 vs 4)');
  });

  it('rejects a weights object missing from the bucket', async () => {
    const w = await weights(scaleModel(3), false);
    const { file, run } = await load([onnxStage('scale', w, '{ x: x }', '{ y: y }')]);
    await expectManifestError(run, file, "stage 'scale'", 'weights.key', `weights object '${w.key}' is not in the bucket`);
  });

  it('rejects a sha256 that does not match the recorded one', async () => {
    const w = await weights(scaleModel(4));
    const other = sha256Hex(scaleModel(5));
    const { file, run } = await load([onnxStage('scale', { key: w.key, sha256: other }, '{ x: x }', '{ y: y }')]);
    await expectManifestError(run, file, "stage 'scale'", 'weights.sha256', `has sha256 ${w.sha256}, the manifest pins ${other}`);
  });

  it('rejects a sha256 mismatch found while downloading an object without recorded hash', async () => {
    const bytes = scaleModel(6);
    const key = `test/unrecorded-${++counter}.onnx`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
    const pinned = sha256Hex(scaleModel(7));
    const { file, run } = await load([onnxStage('scale', { key, sha256: pinned }, '{ x: x }', '{ y: y }')]);
    await expectManifestError(run, file, "stage 'scale'", 'weights.sha256', `expected ${pinned}`);
  });

  it('rejects inputs and outputs the model does not have, and model inputs left unfed', async () => {
    const add = await weights(addModel(4));
    const wrongName = await load([onnxStage('add', add, '{ a: x, bb: x }', '{ sum: y }')]);
    await expectManifestError(wrongName.run, wrongName.file, "stage 'add'", 'inputs.bb', "'bb' is not an input of the model (did you mean 'b'?)");
    const unfed = await load([onnxStage('add', add, '{ a: x }', '{ sum: y }')]);
    await expectManifestError(unfed.run, unfed.file, "stage 'add'", 'inputs', "model input 'b' FP32 [batch, 4] is not fed");
    const wrongOut = await load([onnxStage('add', add, '{ a: x, b: x }', '{ total: y }')]);
    await expectManifestError(wrongOut.run, wrongOut.file, "stage 'add'", 'outputs.total', "'total' is not an output of the model");
  });

  it('rejects batching a model whose batch dim is fixed', async () => {
    const w = await weights(identityModel('FP32', [1, 4]));
    const { file, run } = await load([onnxStage('id', w, '{ x: x }', '{ y: y }', '    batch: { max_size: 4 }\n')]);
    await expectManifestError(run, file, "stage 'id'", 'batch.max_size', "model input 'x' is [1, 4]");
  });
});
