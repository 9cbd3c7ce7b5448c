/**
 * Triton's model configuration and statistics extensions on the demo and OCR
 * pipelines, served as `npm start` serves them: the config and stats in the
 * fields and JSON types Triton's server writes, stage models of their own,
 * counters that move as requests run, and the sequence perf_analyzer goes
 * through (metadata, config, the composing models' configs, a request built
 * from them in binary and JSON form, the statistics it reads).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { renderTextImage } from '../packages/tools/src/bench/render.js';
import { getJson, postJson } from './helpers/http.js';
import { ocrSampleSpecs } from './helpers/ocr-samples.js';
import { expectPerfAnalyzerStat, parseModel, sendAsPerfAnalyzer } from './helpers/perf-analyzer.js';

let dir: string;
let server: RunningServer;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-triton-ext-'));
  server = await startServer({ port: 0, dataDir: join(dir, 'data'), pipelines: ['demo', 'ocr'], env: {}, log: () => undefined });
  base = server.url;
}, 180_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const demoRows = (rows: number) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, i) => i / 10) }],
});

async function allStats(): Promise<Map<string, any>> {
  const r = await getJson(`${base}/v2/models/stats`);
  expect(r.status).toBe(200);
  return new Map((r.body.model_stats as any[]).map((s) => [s.name, s]));
}

describe('model configuration', () => {
  it('lists model_configuration and statistics among the extensions', async () => {
    const r = await getJson(`${base}/v2`);
    expect(r.body.extensions).toEqual(expect.arrayContaining(['model_configuration', 'statistics']));
  });

  it('renders a pipeline as an ensemble whose steps are its stage models, every int64 a JSON number', async () => {
    const r = await getJson(`${base}/v2/models/demo/config`);
    expect(r.status).toBe(200);
    expect((await getJson(`${base}/v2/models/ocr/config`)).body).toMatchObject({ max_batch_size: 0, input: [{ name: 'image', dims: [-1] }] });
    expect(r.body).toMatchObject({
      name: 'demo', platform: 'ensemble', max_batch_size: 10_000,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [4] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [3] }],
      instance_group: [],
    });
    expect(r.body.ensemble_scheduling.step).toEqual([
      { model_name: 'demo.branch_a', model_version: 1, input_map: { input: 'x' }, output_map: { output: 'a' } },
      { model_name: 'demo.branch_b', model_version: 1, input_map: { input: 'x' }, output_map: { output: 'b' } },
      { model_name: 'demo.average', model_version: 1, input_map: { a: 'a', b: 'b' }, output_map: { y: 'y' } },
    ]);
    // The scheduling choice is a oneof in model_config.proto.
    expect(r.body.dynamic_batching).toBeUndefined();
    expect(await getJson(`${base}/v2/models/demo/versions/1/config`)).toMatchObject({ status: 200, body: { name: 'demo' } });
  });

  it('renders each stage as a model with its batcher as dynamic_batching and its instances as a CPU instance group', async () => {
    const onnx = await getJson(`${base}/v2/models/ocr.classify/versions/1/config`);
    expect(onnx.status).toBe(200);
    expect(onnx.body).toMatchObject({
      name: 'ocr.classify', platform: 'onnxruntime_onnx', backend: 'onnxruntime', max_batch_size: 2,
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [3, 48, 192] }],
      output: [{ name: 'softmax_0.tmp_0', data_type: 'TYPE_FP32', dims: [2] }],
      dynamic_batching: { preferred_batch_size: [2], max_queue_delay_microseconds: 100 },
      instance_group: [{ name: 'classify', kind: 'KIND_CPU', count: 1 }],
    });
    const fn = await getJson(`${base}/v2/models/ocr.detect-pre/config`);
    expect(fn.body).toMatchObject({
      name: 'ocr.detect-pre', platform: 'function', max_batch_size: 1,
      input: [{ name: 'rgb', data_type: 'TYPE_UINT8', dims: [-1, -1, 3] }],
      output: [{ name: 'det_input', data_type: 'TYPE_FP32', dims: [3, -1, -1] }, { name: 'det_scale', data_type: 'TYPE_FP32', dims: [2] }],
    });
    // One encoded image per item has no dims of its own: the item dim stays a dim (Triton has no input without dims).
    const decode = await getJson(`${base}/v2/models/ocr.decode/config`);
    expect(decode.body).toMatchObject({ max_batch_size: 0, input: [{ name: 'image', data_type: 'TYPE_STRING', dims: [-1] }] });
    const rec = await getJson(`${base}/v2/models/ocr.recognize/config`);
    expect(rec.body).toMatchObject({ max_batch_size: 1, instance_group: [{ count: 2 }] });
  });

  it('answers a stage model’s metadata, readiness and statistics, and refuses to infer it alone with a 400 that says where to go', async () => {
    const meta = await getJson(`${base}/v2/models/demo.branch_a`);
    expect(meta).toMatchObject({
      status: 200,
      body: { name: 'demo.branch_a', versions: ['1'], platform: 'onnxruntime_onnx', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 3] }] },
    });
    expect(await getJson(`${base}/v2/models/demo.average/versions/1`)).toMatchObject({ status: 200, body: { platform: 'function' } });
    expect(await getJson(`${base}/v2/models/ocr.detect-post/ready`)).toMatchObject({ status: 200, body: { name: 'ocr.detect-post', ready: true } });
    const stats = await getJson(`${base}/v2/models/demo.branch_b/stats`);
    expect(stats.status).toBe(200);
    expect(stats.body.model_stats.map((s: any) => [s.name, s.version])).toEqual([['demo.branch_b', '1']]);
    const infer = await postJson(`${base}/v2/models/demo.branch_a/infer`, { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expect(infer.status).toBe(400);
    expect(infer.body.error).toMatch(/stage 'branch_a' of pipeline 'demo'.*POST \/v2\/models\/demo\/infer/);
    // Stage models are a pipeline's parts, not models of their own in the listing.
    const list = await getJson(`${base}/v2/models`);
    expect(list.body.models.map((m: any) => m.name)).not.toContain('demo.branch_a');
  });

  it('answers unknown models, stages and versions as Triton does: 404 for config and metadata, 400 for statistics', async () => {
    expect((await getJson(`${base}/v2/models/nope/config`)).status).toBe(404);
    const stage = await getJson(`${base}/v2/models/demo.nope/config`);
    expect(stage.status).toBe(404);
    expect(stage.body.error).toMatch(/no stage 'nope'.*demo\.branch_a/);
    expect((await getJson(`${base}/v2/models/demo.nope`)).status).toBe(404);
    expect((await getJson(`${base}/v2/models/demo/versions/9/config`)).status).toBe(404);
    const unknown = await getJson(`${base}/v2/models/nope/stats`);
    expect(unknown).toMatchObject({ status: 400, body: { error: "requested model 'nope' is not available" } });
    expect((await getJson(`${base}/v2/models/demo.nope/stats`)).status).toBe(400);
    expect((await getJson(`${base}/v2/models/demo/versions/9/stats`)).status).toBe(400);
  });

  it('serves the new routes with a trailing slash and answers a wrong method with 405', async () => {
    expect((await getJson(`${base}/v2/models/demo.branch_a/config/`)).status).toBe(200);
    expect((await getJson(`${base}/v2/models/stats/`)).status).toBe(200);
    const post = await fetch(`${base}/v2/models/demo/stats`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toContain('GET');
  });
});

describe('statistics', () => {
  it('lists every pipeline and its stage models in Triton’s fields, even before they ran', async () => {
    const stats = await allStats();
    expect([...stats.keys()]).toEqual(expect.arrayContaining(['demo', 'demo.branch_a', 'demo.branch_b', 'demo.average', 'ocr', 'ocr.detect', 'ocr.filter-lines']));
    for (const s of stats.values()) {
      expectPerfAnalyzerStat(s);
      expect(Object.keys(s)).toEqual(['name', 'version', 'last_inference', 'inference_count', 'execution_count', 'inference_stats', 'response_stats', 'batch_stats', 'memory_usage']);
    }
  });

  it('moves the demo’s counters: requests and rows for the pipeline, items and batches for each stage', async () => {
    const before = await allStats();
    for (const rows of [2, 3, 1]) expect((await postJson(`${base}/v2/models/demo/infer`, demoRows(rows))).status).toBe(200);
    const bad = await postJson(`${base}/v2/models/demo/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
    const after = await allStats();
    const delta = (name: string, f: (s: any) => number) => f(after.get(name)) - f(before.get(name));

    expect(delta('demo', (s) => s.inference_stats.success.count)).toBe(3);
    expect(delta('demo', (s) => s.inference_stats.fail.count)).toBe(1);
    expect(delta('demo', (s) => s.inference_count)).toBe(6);
    expect(delta('demo', (s) => s.execution_count)).toBe(3);
    // perf_analyzer finds the version that ran by its queue count moving.
    expect(delta('demo', (s) => s.inference_stats.queue.count)).toBe(3);
    expect(delta('demo', (s) => s.inference_stats.success.ns)).toBeGreaterThan(0);
    expect(delta('demo', (s) => s.inference_stats.compute_infer.ns)).toBeGreaterThan(0);
    expect(after.get('demo').last_inference).toBeGreaterThan(0);

    for (const stage of ['demo.branch_a', 'demo.branch_b', 'demo.average']) {
      const s = after.get(stage);
      expect(delta(stage, (x) => x.inference_count)).toBe(6);
      expect(delta(stage, (x) => x.inference_stats.success.count)).toBe(6);
      const batches = delta(stage, (x) => x.execution_count);
      expect(batches).toBeGreaterThanOrEqual(1);
      expect(batches).toBeLessThanOrEqual(6);
      expect(delta(stage, (x) => x.inference_stats.compute_infer.ns)).toBeGreaterThan(0);
      // Every batch is in batch_stats under its size: the sizes add up to the items.
      expect(s.batch_stats.reduce((n: number, b: any) => n + b.compute_infer.count, 0)).toBe(s.execution_count);
      expect(s.batch_stats.reduce((n: number, b: any) => n + b.batch_size * b.compute_infer.count, 0)).toBe(s.inference_count);
    }
  });

  it('moves every OCR stage for an image, fan-out stages counting text lines', async () => {
    const before = await allStats();
    const image = await renderTextImage(ocrSampleSpecs(1)[0]);
    const res = await fetch(`${base}/v2/models/ocr/infer`, { method: 'POST', body: image, headers: { 'content-type': 'image/png' } });
    const body = await res.json() as { outputs: { name: string; shape: number[] }[] };
    expect(res.status).toBe(200);
    const lines = body.outputs.find((o) => o.name === 'text')!.shape[0];
    expect(lines).toBeGreaterThan(0);
    const after = await allStats();
    const delta = (name: string, f: (s: any) => number) => f(after.get(name)) - f(before.get(name));
    expect(delta('ocr', (s) => s.inference_count)).toBe(1);
    expect(delta('ocr', (s) => s.inference_stats.success.count)).toBe(1);
    for (const stage of ['decode', 'detect-pre', 'detect', 'detect-post', 'crop']) expect(delta(`ocr.${stage}`, (s) => s.inference_count), stage).toBe(1);
    for (const stage of ['cls-pre', 'classify', 'recognize', 'ctc-decode']) expect(delta(`ocr.${stage}`, (s) => s.inference_count), stage).toBeGreaterThanOrEqual(lines);
    expect(delta('ocr.recognize', (s) => s.execution_count)).toBe(delta('ocr.recognize', (s) => s.inference_count));
    expect(delta('ocr.detect', (s) => s.inference_stats.queue.count)).toBe(1);
  });
});

describe('perf_analyzer’s sequence', () => {
  it('parses the demo as an ensemble of its stage models and sends -b 3 in binary and JSON form', async () => {
    const p = await parseModel(base, 'demo');
    expect(p).toMatchObject({ name: 'demo', maxBatchSize: 10_000, ensemble: true, statistics: true, outputs: ['y'] });
    expect(p.inputs.get('x')).toEqual({ datatype: 'FP32', shape: [4] });
    expect(p.composing).toEqual([{ name: 'demo.branch_a', version: '1' }, { name: 'demo.branch_b', version: '1' }, { name: 'demo.average', version: '1' }]);
    const values = Array.from({ length: 12 }, (_, i) => i - 6);
    const data = { x: { bytes: new Uint8Array(Float32Array.from(values).buffer), json: values } };
    const before = await allStats();
    for (const format of ['binary', 'json'] as const) {
      const r = await sendAsPerfAnalyzer(base, p, 3, data, format);
      expect(r.status, JSON.stringify(r.header)).toBe(200);
      expect(r.header.outputs).toEqual([expect.objectContaining({ name: 'y', datatype: 'FP32', shape: [3, 3] })]);
      if (format === 'binary') expect(r.header.outputs[0].parameters.binary_data_size).toBe(36);
    }
    // What the profiler then reads: the ensemble's and every composing model's stats, by name and version.
    const after = await allStats();
    expect(after.get('demo').inference_stats.queue.count - before.get('demo').inference_stats.queue.count).toBe(2);
    for (const c of p.composing) {
      expectPerfAnalyzerStat(after.get(c.name));
      expect(after.get(c.name).version).toBe(c.version);
      expect(after.get(c.name).inference_count - before.get(c.name).inference_count).toBe(6);
    }
  });

  it('parses OCR and sends a real image as its one BYTES row, as --input-data with b64 content and shape [1] does', async () => {
    // Without the shape, perf_analyzer stops at the -1 ("provide shapes to send along with the request").
    await expect(sendAsPerfAnalyzer(base, await parseModel(base, 'ocr'), 1, {}, 'binary')).rejects.toThrow(/dynamic shape/);
    const p = await parseModel(base, 'ocr', '', { image: [1] });
    expect(p).toMatchObject({ maxBatchSize: 0, ensemble: true });
    expect(p.inputs.get('image')).toEqual({ datatype: 'BYTES', shape: [1] });
    expect(p.composing.map((c) => c.name)).toEqual([
      'ocr.decode', 'ocr.detect-pre', 'ocr.detect', 'ocr.detect-post', 'ocr.crop', 'ocr.cls-pre', 'ocr.classify',
      'ocr.cls-post', 'ocr.rec-pre', 'ocr.recognize', 'ocr.ctc-decode', 'ocr.filter-lines',
    ]);
    const image = await renderTextImage(ocrSampleSpecs(1, 7)[0]);
    // A BYTES element in binary form: its 4-byte little-endian length, then the bytes.
    const bytes = new Uint8Array(4 + image.byteLength);
    new DataView(bytes.buffer).setUint32(0, image.byteLength, true);
    bytes.set(image, 4);
    const r = await sendAsPerfAnalyzer(base, p, 1, { image: { bytes, json: [] } }, 'binary');
    expect(r.status, JSON.stringify(r.header)).toBe(200);
    expect(r.header.outputs.map((o: any) => o.name)).toEqual(['text', 'image_index', 'confidence', 'box']);
    expect(r.header.outputs[0].shape[0]).toBeGreaterThan(0);
  });
});

describe('request parameters, as Triton’s HTTP server reads them', () => {
  const withParameters = (parameters: unknown) => postJson(`${base}/v2/models/demo/infer`, { ...demoRows(1), parameters });

  it('takes priority and the sequence parameters of the right types, and refuses the wrong ones naming them', async () => {
    for (const ok of [{ priority: 0 }, { priority: 3 }, { sequence_id: 42, sequence_start: true }, { sequence_id: 'abc', sequence_end: false }, { my_custom: 'x', n: 1.5, flag: true }]) {
      expect((await withParameters(ok)).status, JSON.stringify(ok)).toBe(200);
    }
    const refused: [unknown, RegExp][] = [
      [{ priority: -1 }, /priority must be a non-negative integer/],
      [{ priority: 1.5 }, /priority must be a non-negative integer/],
      [{ priority: 'high' }, /priority must be a non-negative integer/],
      [{ sequence_start: 1 }, /sequence_start must be a boolean/],
      [{ sequence_id: -2 }, /sequence_id must be a non-negative integer or a string/],
      [{ triton_enable_empty_final_response: true }, /keys starting with 'triton_' are reserved/],
      [{ my_custom: { a: 1 } }, /parameter 'my_custom' must be a string, a number or a boolean, got object/],
      [{ list: [1] }, /got an array/],
      [{ timeout: 1.5 }, /whole, non-negative number of microseconds/],
    ];
    for (const [parameters, message] of refused) {
      const r = await withParameters(parameters);
      expect(r.status, JSON.stringify(parameters)).toBe(400);
      expect(r.body.error).toMatch(message);
    }
  });
});
