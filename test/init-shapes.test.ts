/**
 * `ensemble init` on models that are not batch-major on every input, built
 * here with the structure of real ones: a Silero VAD-like model (a scalar
 * sample rate, a state with its batch on dim 1) and an IS-Net-like model
 * (batch fixed to 1, two outputs of which one is kept). Each serves with no
 * hand edit and answers a request of two items as onnxruntime does on the
 * whole model.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../packages/tools/src/onnx/builder.js';
import type { RunningServer } from '../packages/tools/src/serve/server.js';
import { runWhole, withPipeline } from './helpers/serve-models.js';
import { seededFloats } from '../packages/core/test/fixtures/models.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { verifyManifest } from '../packages/core/src/manifest/verify.js';
import { LocalFileWeightStore } from '../packages/tools/src/pipelines/local-weights.js';
import { runCli } from './helpers/cli.js';
import { postJson } from './helpers/http.js';

let root: string;
let modelsDir: string;

/**
 * Silero VAD's signature: input [batch, n], sr INT64 [], state [2, batch, 4];
 * output = ReduceSum(input) * sr + ReduceSum(state over dims 0 and 2), state_out = state * 2.
 */
function sileroLike(): Uint8Array {
  return new GraphBuilder('vad_like')
    .input('input', 'FP32', ['batch', 'n'])
    .input('sr', 'INT64', [])
    .input('state', 'FP32', [2, 'batch', 4])
    .output('output', 'FP32', ['batch', 1])
    .output('stateN', 'FP32', [2, 'batch', 4])
    .initializer('ax1', 'INT64', [1], BigInt64Array.of(1n))
    .initializer('ax02', 'INT64', [2], BigInt64Array.of(0n, 2n))
    .initializer('two', 'FP32', [], Float32Array.of(2))
    .node('ReduceSum', ['input', 'ax1'], ['sum'], { keepdims: 1 })
    .node('Cast', ['sr'], ['srf'], { to: 1 })
    .node('Mul', ['sum', 'srf'], ['scaled'])
    .node('ReduceSum', ['state', 'ax02'], ['ssum'], { keepdims: 0 })
    .node('Unsqueeze', ['ssum', 'ax1'], ['ssum2'])
    .node('Add', ['scaled', 'ssum2'], ['output'])
    .node('Mul', ['state', 'two'], ['stateN'])
    .build();
}

/** IS-Net's signature: input [1, 3, 8, 8], a mask and a side output of the same shape. */
function isNetLike(): Uint8Array {
  return new GraphBuilder('isnet_like')
    .input('input', 'FP32', [1, 3, 8, 8])
    .output('mask', 'FP32', [1, 1, 8, 8])
    .output('side', 'FP32', [1, 3, 8, 8])
    .initializer('ax1', 'INT64', [1], BigInt64Array.of(1n))
    .initializer('one', 'FP32', [], Float32Array.of(1))
    .node('ReduceMean', ['input', 'ax1'], ['mean'], { keepdims: 1 })
    .node('Sigmoid', ['mean'], ['mask'])
    .node('Add', ['input', 'one'], ['side'])
    .build({ opset: 18 });
}

const direct = runWhole;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-init-shapes-'));
  modelsDir = join(root, 'models');
});
afterAll(async () => { if (root) await rm(root, { recursive: true, force: true }); });

const serve = (pipeline: string, run: (server: RunningServer) => Promise<void>) => withPipeline(root, modelsDir, pipeline, run);

type Out = { name: string; shape: number[]; data: number[] };
const byName = (outs: Out[]) => Object.fromEntries(outs.map((o) => [o.name, o]));

describe('ensemble init on models that are not batch-major everywhere', () => {
  it('serves a Silero VAD-like model (scalar sr, state batched on dim 1) with no hand edit', async () => {
    const file = join(root, 'vad_like.onnx');
    const model = sileroLike();
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir]);
    expect(r.code, r.stderr).toBe(0);
    const yaml = await readFile(join(modelsDir, 'vad_like', 'pipeline.yaml'), 'utf8');
    expect(yaml).toContain('per_request: true');
    expect(yaml).toMatch(/batch_axis: 1/);

    const input = Array.from(seededFloats(2 * 5, 1));
    const state = Array.from(seededFloats(2 * 2 * 4, 2));
    const want = await direct(model, {
      input: new ort.Tensor('float32', Float32Array.from(input), [2, 5]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
      state: new ort.Tensor('float32', Float32Array.from(state), [2, 2, 4]),
    });
    await serve('vad_like', async (server) => {
      const infer = (sr: number) => postJson(`${server.url}/v2/models/vad_like/infer`, {
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [2, 5], data: input },
          { name: 'sr', datatype: 'INT64', shape: [], data: [sr] },
          { name: 'state', datatype: 'FP32', shape: [2, 2, 4], data: state },
        ],
      });
      const [res, other] = await Promise.all([infer(16000), infer(8000)]);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const out = byName(res.body.outputs);
      expect(out.output.shape).toEqual([2, 1]);
      out.output.data.forEach((v, i) => expect(v).toBeCloseTo(want.output.data[i], 2));
      expect(out.stateN.shape).toEqual([2, 2, 4]);
      out.stateN.data.forEach((v, i) => expect(v).toBeCloseTo(want.stateN.data[i], 5));
      // A concurrent request at another rate is batched apart and gets its own rate's answer.
      expect(other.status, JSON.stringify(other.body)).toBe(200);
      const half = byName(other.body.outputs).output.data;
      const sums = [0, 1].map((row) => input.slice(row * 5, row * 5 + 5).reduce((a, b) => a + b, 0));
      half.forEach((v, row) => expect(v).toBeCloseTo(want.output.data[row] - sums[row] * 8000, 2));

      // The declared shape and datatype of the per-request input are checked.
      const bad = await postJson(`${server.url}/v2/models/vad_like/infer`, {
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [2, 5], data: input },
          { name: 'sr', datatype: 'INT64', shape: [1], data: [16000] },
          { name: 'state', datatype: 'FP32', shape: [2, 2, 4], data: state },
        ],
      });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toContain("input 'sr'");
      // Items are counted along each input's batch axis: 3 states for 2 inputs is refused.
      const uneven = await postJson(`${server.url}/v2/models/vad_like/infer`, {
        inputs: [
          { name: 'input', datatype: 'FP32', shape: [2, 5], data: input },
          { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
          { name: 'state', datatype: 'FP32', shape: [2, 3, 4], data: Array.from(seededFloats(24, 4)) },
        ],
      });
      expect(uneven.status).toBe(400);
      expect(JSON.stringify(uneven.body)).toContain('3 items (dim 1)');
    });
  });

  it('serves an IS-Net-like model (batch fixed to 1, one of two outputs kept) one item per call', async () => {
    const file = join(root, 'isnet_like.onnx');
    const model = isNetLike();
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir, '--outputs', 'mask']);
    expect(r.code, r.stderr).toBe(0);
    const yaml = await readFile(join(modelsDir, 'isnet_like', 'pipeline.yaml'), 'utf8');
    expect(yaml).toMatch(/max_size: 1 /);

    // max_size above 1 is refused before serving, saying why.
    await writeFile(join(modelsDir, 'isnet_like', 'pipeline.yaml'), yaml.replace(/max_size: 1 /, 'max_size: 4 '));
    const m = await loadManifest(join(modelsDir, 'isnet_like', 'pipeline.yaml'));
    await expect(verifyManifest(m, new LocalFileWeightStore(m))).rejects.toThrow(/batch\.max_size: 4 needs a dynamic batch dim.*one item per call/);
    await writeFile(join(modelsDir, 'isnet_like', 'pipeline.yaml'), yaml);

    const data = Array.from(seededFloats(2 * 3 * 64, 7));
    await serve('isnet_like', async (server) => {
      const res = await postJson(`${server.url}/v2/models/isnet_like/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 3, 8, 8], data }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const mask = byName(res.body.outputs).mask;
      expect(mask.shape).toEqual([2, 1, 8, 8]);
      for (const row of [0, 1]) {
        const want = await direct(model, { input: new ort.Tensor('float32', Float32Array.from(data.slice(row * 192, row * 192 + 192)), [1, 3, 8, 8]) });
        mask.data.slice(row * 64, row * 64 + 64).forEach((v, i) => expect(v).toBeCloseTo(want.mask.data[i], 5));
      }
    });
  });
});
