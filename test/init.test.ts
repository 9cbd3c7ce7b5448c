/**
 * The three commands a new user runs: `ensemble init model.onnx`, `npm start`
 * (the same server, in-process), and the first request init printed — on
 * models built here with the shapes real ones have: dynamic dims, a batch
 * dim fixed to 1, several outputs of which one is wanted, and a cut.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../packages/tools/src/onnx/builder.js';
import { encodeModel } from '../packages/tools/src/onnx/proto.js';
import { inspectModel } from '../packages/tools/src/onnx/inspect.js';
import type { RunningServer } from '../packages/tools/src/serve/server.js';
import { runWhole, withPipeline } from './helpers/serve-models.js';
import { seededFloats, skipConnectionModel } from '../packages/core/test/fixtures/models.js';
import { runCli } from './helpers/cli.js';
import { postJson } from './helpers/http.js';
import { REPO } from './helpers/pipelines.js';

let root: string;
let modelsDir: string;

/** y = x * w (per channel), z = x + 1: [batch, 3, h, w] in, two outputs of the same shape. */
function twoHeadModel(batch: number | string): Uint8Array {
  return new GraphBuilder('two_heads')
    .input('image', 'FP32', [batch, 3, 'h', 'w'])
    .output('mask', 'FP32', [batch, 3, 'h', 'w'])
    .output('side', 'FP32', [batch, 3, 'h', 'w'])
    .initializer('k', 'FP32', [1, 3, 1, 1], Float32Array.of(2, 3, 4))
    .initializer('one', 'FP32', [], Float32Array.of(1))
    .node('Mul', ['image', 'k'], ['mask'])
    .node('Add', ['image', 'one'], ['side'])
    .build();
}

/** What onnxruntime-node computes on the whole model, for comparison. */
const direct = async (model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> =>
  Object.fromEntries(Object.entries(await runWhole(model, feeds)).map(([k, v]) => [k, v.data]));

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-init-'));
  modelsDir = join(root, 'models');
});
afterAll(async () => { if (root) await rm(root, { recursive: true, force: true }); });

const serve = (pipeline: string, run: (server: RunningServer) => Promise<void>) => withPipeline(root, modelsDir, pipeline, run);

/** The body of the curl command init printed: inline JSON, or the file it names. */
async function printedBody(stdout: string): Promise<string> {
  const line = stdout.split('\n').find((l) => l.includes('curl -s'))!;
  expect(line, stdout).toBeDefined();
  const inline = /-d '(.*)'$/.exec(line);
  if (inline) return inline[1];
  const file = /-d @(\S+)$/.exec(line)![1];
  return readFile(join(REPO, file), 'utf8');
}

describe('ensemble init', () => {
  it('serves a model with dynamic dims whole, answering the printed request as onnxruntime does', async () => {
    const file = join(root, 'Two Heads.onnx');
    const model = twoHeadModel('batch');
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('two_heads/pipeline.yaml');
    expect(r.stdout).toContain('ragged');
    // It ran two items in one call here, so it batches.
    const written = await readFile(join(modelsDir, 'two_heads', 'pipeline.yaml'), 'utf8');
    expect(written).toMatch(/max_size: 8 /);
    // Triton's defaults for an ONNX Runtime model on CPU: no queue delay, two instances.
    expect(written).toMatch(/max_delay_ms: 0\.1 /);
    expect(written).toMatch(/instances: 2 /);
    expect(r.stdout).not.toContain('in one call');
    const body = await printedBody(r.stdout);
    await serve('two_heads', async (server) => {
      const res = await postJson(`${server.url}/v2/models/two_heads/infer`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const x = new ort.Tensor('float32', new Float32Array(3), [1, 3, 1, 1]);
      const want = await direct(model, { image: x });
      const out = Object.fromEntries(res.body.outputs.map((o: { name: string; data: number[] }) => [o.name, o.data]));
      expect(out.mask).toEqual(want.mask);
      expect(out.side).toEqual(want.side);
      // Real images: two rows of 3 x 2 x 2, the answer is the model's on each.
      const data = Array.from(seededFloats(24, 3));
      const two = await postJson(`${server.url}/v2/models/two_heads/infer`, { inputs: [{ name: 'image', datatype: 'FP32', shape: [2, 3, 2, 2], data }] });
      expect(two.status).toBe(200);
      // The request's two rows leave in one batch, though an instance was free when the first was queued.
      await server.env.runs.flush();
      const record = await (await fetch(`${server.url}/v2/runs/${two.body.parameters.run_id}`)).json() as { stages: { batchSizes: number[] }[] };
      expect(record.stages[0].batchSizes).toEqual([2]);
      const whole = await direct(model, { image: new ort.Tensor('float32', Float32Array.from(data), [2, 3, 2, 2]) });
      const mask = two.body.outputs.find((o: { name: string }) => o.name === 'mask');
      expect(mask.shape).toEqual([2, 3, 2, 2]);
      mask.data.forEach((v: number, i: number) => expect(v).toBeCloseTo(whole.mask[i], 5));
    });
  });

  it('folds weights kept as ONNX external data into the model it writes, and serves what onnxruntime computes from the files', async () => {
    const dir = await mkdtemp(join(root, 'external-'));
    const proto = new GraphBuilder('two_heads').input('image', 'FP32', ['batch', 3, 'h', 'w'])
      .output('mask', 'FP32', ['batch', 3, 'h', 'w']).output('side', 'FP32', ['batch', 3, 'h', 'w'])
      .initializer('k', 'FP32', [1, 3, 1, 1], Float32Array.of(2, 3, 4)).initializer('one', 'FP32', [], Float32Array.of(1))
      .node('Mul', ['image', 'k'], ['mask']).node('Add', ['image', 'one'], ['side']).toModel();
    // 'k' in a side file at an offset, as exporters write it (the bytes before it belong to other tensors).
    const k = proto.graph!.initializer!.find((t) => t.name === 'k')!;
    const raw = k.rawData as Uint8Array;
    await writeFile(join(dir, 'model.onnx.data'), Buffer.concat([Buffer.alloc(8, 7), Buffer.from(raw)]));
    k.rawData = new Uint8Array(0);
    k.dataLocation = 1;
    k.externalData = [{ key: 'location', value: 'model.onnx.data' }, { key: 'offset', value: '8' }, { key: 'length', value: String(raw.byteLength) }];
    const file = join(dir, 'model.onnx');
    await writeFile(file, encodeModel(proto));
    expect(inspectModel(file).externalData).toEqual(['model.onnx.data']);

    const r = await runCli(['init', file, '--name', 'external', '--models', modelsDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('model.onnx.data are inside model.onnx now');
    expect(inspectModel(join(modelsDir, 'external', 'model.onnx')).externalData).toEqual([]);
    const data = Array.from(seededFloats(12, 9));
    const want = Object.fromEntries(Object.entries(await (await ort.InferenceSession.create(file)).run({ image: new ort.Tensor('float32', Float32Array.from(data), [1, 3, 2, 2]) }))
      .map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
    await serve('external', async (server) => {
      const res = await postJson(`${server.url}/v2/models/external/infer`, { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 2, 2], data }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      for (const name of ['mask', 'side']) expect(res.body.outputs.find((o: { name: string }) => o.name === name).data).toEqual(want[name]);
    });

    // A side file that is not there is named, with where it was looked for.
    await rm(join(dir, 'model.onnx.data'));
    const missing = await runCli(['init', file, '--name', 'external-missing', '--models', modelsDir]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("initializer 'k' keeps its weights in model.onnx.data, which is not next to the model");
  });

  it('fails only the request whose token id the model refuses, not the requests batched with it', async () => {
    // Gather from a 4-row table: an id of 9 makes ONNX Runtime refuse the whole batch it is in.
    const file = join(root, 'embed.onnx');
    await writeFile(file, new GraphBuilder('embed').input('ids', 'INT64', ['batch', 'seq']).output('vec', 'FP32', ['batch', 'seq', 2])
      .initializer('table', 'FP32', [4, 2], Float32Array.of(0, 1, 10, 11, 20, 21, 30, 31)).node('Gather', ['table', 'ids'], ['vec']).build());
    const r = await runCli(['init', file, '--models', modelsDir]);
    expect(r.code, r.stderr).toBe(0);
    // Wait long enough for all five to share the model's first batch.
    const yaml = join(modelsDir, 'embed', 'pipeline.yaml');
    await writeFile(yaml, (await readFile(yaml, 'utf8')).replace(/max_delay_ms: [\d.]+/, 'max_delay_ms: 50'));
    await serve('embed', async (server) => {
      const ids = [[0, 1], [2, 3], [9, 0], [3, 3], [1, 0]];
      const answers = await Promise.all(ids.map((row) => postJson(`${server.url}/v2/models/embed/infer`, { inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 2], data: row }] })));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 500, 200, 200]);
      expect(answers[2].body.error).toContain('out of');
      ids.forEach((row, i) => {
        if (i !== 2) expect(answers[i].body.outputs[0].data).toEqual(row.flatMap((id) => [id * 10, id * 10 + 1]));
      });
    });
  });

  it('writes max_size 1 for a model whose batch dim is fixed to 1, and serves two rows one call each', async () => {
    const file = join(root, 'fixed.onnx');
    const model = twoHeadModel(1);
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir, '--outputs', 'mask']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('one item per call');
    expect(r.stdout).toContain('kept output mask');
    const yaml = await readFile(join(modelsDir, 'fixed', 'pipeline.yaml'), 'utf8');
    expect(yaml).toMatch(/max_size: 1 /);
    // The weights written hold one output only.
    expect(inspectModel(join(modelsDir, 'fixed', 'model.onnx')).outputs.map((o) => o.name)).toEqual(['mask']);
    await serve('fixed', async (server) => {
      const data = Array.from(seededFloats(24, 5));
      const res = await postJson(`${server.url}/v2/models/fixed/infer`, { inputs: [{ name: 'image', datatype: 'FP32', shape: [2, 3, 2, 2], data }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual(['mask', 'mask_shape']);
      const mask = res.body.outputs[0];
      for (const row of [0, 1]) {
        const want = await direct(model, { image: new ort.Tensor('float32', Float32Array.from(data.slice(row * 12, row * 12 + 12)), [1, 3, 2, 2]) });
        mask.data.slice(row * 12, row * 12 + 12).forEach((v: number, i: number) => expect(v).toBeCloseTo(want.mask[i], 5));
      }
    });
  });

  it('writes max_size 1, saying why, for a model whose free batch dim is fixed inside the graph, and serves two rows one call each', async () => {
    // The metadata says [batch, 4], but a Reshape to the constant [1, 4] runs one item only.
    const file = join(root, 'reshape_one.onnx');
    const model = new GraphBuilder('reshape_one')
      .input('x', 'FP32', ['batch', 4])
      .output('y', 'FP32', ['batch', 4])
      .initializer('one_by_four', 'INT64', [2], BigInt64Array.of(1n, 4n))
      .initializer('k', 'FP32', [], Float32Array.of(3))
      .node('Reshape', ['x', 'one_by_four'], ['flat'])
      .node('Mul', ['flat', 'k'], ['y'])
      .build();
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('the model failed on 2 items in one call');
    const yaml = await readFile(join(modelsDir, 'reshape_one', 'pipeline.yaml'), 'utf8');
    expect(yaml).toMatch(/max_size: 1 +# the model failed on 2 items in one call \(Reshape node '[^']+': The input tensor cannot be reshaped to the requested shape\. Input shape:\{2,4\}, requested shape:\{1,4\}\): one item per call\n/);
    await serve('reshape_one', async (server) => {
      const res = await postJson(`${server.url}/v2/models/reshape_one/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.outputs[0].data).toEqual([3, 6, 9, 12, 15, 18, 21, 24]);
    });

    // One that runs two items but answers them with one row: also one item per call.
    const merged = join(root, 'sum_rows.onnx');
    await writeFile(merged, new GraphBuilder('sum_rows')
      .input('x', 'FP32', ['batch', 4])
      .output('y', 'FP32', ['batch', 4])
      .initializer('ax0', 'INT64', [1], BigInt64Array.of(0n))
      .node('ReduceSum', ['x', 'ax0'], ['y'], { keepdims: 1 })
      .build());
    const m = await runCli(['init', merged, '--models', modelsDir]);
    expect(m.code, m.stderr).toBe(0);
    expect(await readFile(join(modelsDir, 'sum_rows', 'pipeline.yaml'), 'utf8'))
      .toMatch(/max_size: 1 +# the model answered 2 items in one call with 1 items of output 'y' \(dims \[1, 4\]\): one item per call\n/);

  });

  it('cuts the model with --stages and serves the cut pipeline with the same answers', async () => {
    const file = join(root, 'skip.onnx');
    const model = skipConnectionModel();
    await writeFile(file, model);
    const r = await runCli(['init', file, '--models', modelsDir, '--stages', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('(2 stages)');
    // Each stage batches as the whole model would have (init's own default, with its comment-free form here).
    const yaml = await readFile(join(modelsDir, 'skip', 'pipeline.yaml'), 'utf8');
    expect(yaml.match(/max_size: 8\n\s+max_delay_ms: 0\.1\n\s+scale:\n\s+instances: 2/g)).toHaveLength(2);
    await serve('skip', async (server) => {
      const data = Array.from(seededFloats(16, 9));
      const res = await postJson(`${server.url}/v2/models/skip/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 8], data }] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const want = await direct(model, { x: new ort.Tensor('float32', Float32Array.from(data), [2, 8]) });
      res.body.outputs[0].data.forEach((v: number, i: number) => expect(v).toBeCloseTo(want.y[i], 5));
    });
  });

  it('cuts a model that runs only at larger free dims, at the size the whole model ran at', async () => {
    // A length-3 convolution over a free length: at length 1 it cannot run, which is all decompose would try.
    const file = join(root, 'conv.onnx');
    await writeFile(file, new GraphBuilder('conv')
      .input('x', 'FP32', ['batch', 1, 'len'])
      .initializer('w', 'FP32', [1, 1, 3], Float32Array.of(1, 2, 1))
      .output('z', 'FP32', ['batch', 1, 'out'])
      .node('Conv', ['x', 'w'], ['c'])
      .node('Relu', ['c'], ['z'])
      .build());
    const r = await runCli(['init', file, '--models', modelsDir, '--stages', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('(2 stages)');
    expect(r.stdout).toContain('sets the model\'s free dims to 8');
  });

  it('refuses an existing folder, an unknown output and a model without a batch dim, saying what to do', async () => {
    const file = join(root, 'Two Heads.onnx');
    let r = await runCli(['init', file, '--models', modelsDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('already exists');
    r = await runCli(['init', file, '--models', modelsDir, '--name', 'other', '--outputs', 'nope']);
    expect(r.stderr).toContain("no output 'nope'");
    expect(r.stderr).toContain("'mask', 'side'");
    const scalar = join(root, 'scalar.onnx');
    await writeFile(scalar, new GraphBuilder('scalar').input('x', 'FP32', []).output('y', 'FP32', []).node('Identity', ['x'], ['y']).build());
    r = await runCli(['init', scalar, '--models', modelsDir]);
    expect(r.code).not.toBe(0);
    // A scalar input is one value per request; a scalar output has no items to give back.
    expect(r.stderr).toContain("model output 'y'");
    expect(r.stderr).toContain('no batch dimension');
    // An output that is a sequence (ZipMap's kind), and one that is the input passed through: said so, with the way out.
    const seq = new GraphBuilder('seq').input('x', 'FP32', ['n', 2]).output('y', 'FP32', ['n', 2]).node('Relu', ['x'], ['y'])
      .node('SequenceConstruct', ['x', 'y'], ['parts']).toModel();
    seq.graph!.output!.push({ name: 'parts', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } });
    seq.graph!.output!.push({ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }, { dimValue: 2 }] } } } });
    const seqFile = join(root, 'seq.onnx');
    await writeFile(seqFile, encodeModel(seq));
    r = await runCli(['init', seqFile, '--models', modelsDir]);
    expect(r.stderr).toContain("model output 'parts' is a sequence, not a tensor: the Open Inference Protocol carries tensors only; serve the others with --outputs y");
    r = await runCli(['init', seqFile, '--models', modelsDir, '--outputs', 'y,x']);
    expect(r.stderr).toContain("model output 'x' is its input 'x' passed through");
    r = await runCli(['init', seqFile, '--models', modelsDir, '--outputs', 'y']);
    expect(r.code, r.stderr).toBe(0);
    // A folder for the file, and a file that is not there: said so, not the file system's error code.
    r = await runCli(['init', root, '--models', modelsDir]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${root} is a folder, not an ONNX file`);
    expect(r.stderr).not.toContain('EISDIR');
    r = await runCli(['init', join(root, 'missing.onnx'), '--models', modelsDir]);
    expect(r.stderr).toContain('no such model file');
  });
});
