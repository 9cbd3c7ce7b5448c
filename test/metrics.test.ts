/**
 * GET /metrics on a real server (ensemble serve in-process, worker pools,
 * emulated S3 and DynamoDB): the Prometheus text parses, and its counters
 * move as requests succeed, fail, are refused and are cancelled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { parseExposition, type Exposition } from '../packages/core/test/observability/prometheus-text.js';
import { getJson, postJson } from './helpers/http.js';
import { addDemo, writePassPipeline } from './helpers/pipelines.js';

let root: string;
let server: RunningServer;

/**
 * A stage that holds its items for a minute, waiting for a batch of 4 that
 * never fills since it queues at most 3: a request of 3 rows waits there, a
 * row from anyone else meanwhile is refused with 429.
 */
async function writeHeldPipeline(modelsDir: string): Promise<void> {
  await writePassPipeline(modelsDir, 'held', '{ max_size: 4, max_delay_ms: 60000, max_queue: 3 }');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-metrics-'));
  const modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  await writeHeldPipeline(modelsDir);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, env: {}, log: () => undefined });
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function scrape(headers: Record<string, string> = {}, base = server.url): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** Scrapes until `ok` holds (the server works on its own clock), failing after a while with the last text. */
async function until(ok: (m: Exposition) => boolean): Promise<Exposition> {
  let m = await scrape();
  for (let i = 0; i < 200 && !ok(m); i++) {
    await new Promise((r) => setTimeout(r, 25));
    m = await scrape();
  }
  expect(ok(m), 'the metrics never reached the expected state').toBe(true);
  return m;
}

const demo = (rows: number) => postJson(`${server.url}/v2/models/demo/infer`, {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: Array.from({ length: rows * 4 }, (_, i) => i / 10) }],
});
const held = (rows: number, signal?: AbortSignal) => fetch(`${server.url}/v2/models/held/infer`, {
  method: 'POST', signal, headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [rows], data: Array.from({ length: rows }, (_, i) => i) }] }),
});

describe('GET /metrics', () => {
  it("declares Triton's families with their types, and the process metrics", async () => {
    const m = await scrape();
    for (const name of [
      'nv_inference_request_success', 'nv_inference_request_failure', 'nv_inference_count', 'nv_inference_exec_count',
      'nv_inference_request_duration_us', 'nv_inference_queue_duration_us', 'nv_inference_compute_input_duration_us',
      'nv_inference_compute_infer_duration_us', 'nv_inference_compute_output_duration_us', 'ensemble_stage_cold_starts_total',
      'ensemble_stage_worker_restarts_total', 'ensemble_http_responses_total',
    ]) expect(m.types.get(name), name).toBe('counter');
    for (const name of ['nv_inference_pending_request_count', 'ensemble_stage_queue_depth', 'ensemble_run_records_unwritten']) {
      expect(m.types.get(name), name).toBe('gauge');
    }
    expect(m.types.get('ensemble_stage_batch_size')).toBe('histogram');
    expect(m.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(m.value('ensemble_run_records_unwritten')).toBeGreaterThanOrEqual(0);
  });

  it('counts successful requests, their items and batches, per pipeline and per stage', async () => {
    const before = await scrape();
    const rows = [1, 2, 3, 1, 5, 2];
    const answers = await Promise.all(rows.map((n) => demo(n)));
    expect(answers.map((a) => a.status)).toEqual(rows.map(() => 200));
    const total = rows.reduce((a, b) => a + b, 0);
    const m = await until((x) => x.value('nv_inference_pending_request_count', { model: 'demo' }) === 0);
    const delta = (name: string, labels: Record<string, string>) => m.value(name, labels) - before.value(name, labels);

    const pipeline = { model: 'demo', version: '1' };
    expect(delta('nv_inference_request_success', pipeline)).toBe(rows.length);
    expect(delta('nv_inference_count', pipeline)).toBe(total);
    expect(delta('nv_inference_exec_count', pipeline)).toBe(rows.length);
    expect(delta('nv_inference_request_duration_us', pipeline)).toBeGreaterThan(0);
    expect(delta('nv_inference_request_failure', pipeline)).toBe(0);

    for (const stage of ['branch_a', 'branch_b', 'average']) {
      const s = { model: `demo.${stage}`, version: '1', pipeline: 'demo', stage };
      expect(delta('nv_inference_count', s), stage).toBe(total);
      expect(delta('nv_inference_request_success', s), stage).toBe(total);
      // Batched: no more batches than items, and the histogram agrees with the counters.
      const exec = delta('nv_inference_exec_count', s);
      expect(exec, stage).toBeGreaterThanOrEqual(1);
      expect(exec, stage).toBeLessThanOrEqual(total);
      expect(delta('ensemble_stage_batch_size_count', s), stage).toBe(exec);
      expect(delta('ensemble_stage_batch_size_sum', s), stage).toBe(total);
      expect(delta('ensemble_stage_batch_size_bucket', { ...s, le: '+Inf' }), stage).toBe(exec);
      // Cumulative buckets: each holds at least the one below it.
      const buckets = m.find('ensemble_stage_batch_size_bucket', s).map((b) => b.value);
      expect(buckets, stage).toEqual([...buckets].sort((a, b) => a - b));
      expect(delta('nv_inference_request_duration_us', s), stage).toBeGreaterThan(0);
      expect(m.value('ensemble_stage_queue_depth', s), stage).toBe(0);
    }
    // The ONNX stages ran their models and their items queued. A pipeline counts as Triton's ensemble does:
    // no queue of its own, and per request the compute of every batch its items rode in (its run record's).
    expect(delta('nv_inference_compute_infer_duration_us', { model: 'demo.branch_a' })).toBeGreaterThan(0);
    expect(delta('nv_inference_queue_duration_us', pipeline)).toBe(0);
    const records = await Promise.all(answers.map(async (a) => (await getJson(`${server.url}/v2/runs/${a.body.parameters.run_id}`)).body));
    const sum = (field: 'computeMs' | 'transferMs') => records.reduce((all, r) => all + r.stages.reduce((t: number, st: Record<string, number>) => t + (st[field] ?? 0), 0), 0) * 1000;
    // Records round each stage's figures to 0.01 ms; the counters are written in whole microseconds.
    expect(Math.abs(delta('nv_inference_compute_infer_duration_us', pipeline) - sum('computeMs'))).toBeLessThanOrEqual(rows.length * 3 * 10 + 2);
    expect(Math.abs(delta('nv_inference_compute_input_duration_us', pipeline) - sum('transferMs'))).toBeLessThanOrEqual(rows.length * 3 * 10 + 2);
  });

  it('counts a bad request as a failure (OTHER) and every response by its status', async () => {
    const before = await scrape();
    const bad = await postJson(`${server.url}/v2/models/demo/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
    expect((await fetch(`${server.url}/v2/models/nothing/infer`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(`${server.url}/no/such/route`)).status).toBe(404);
    const m = await scrape();
    const delta = (name: string, labels: Record<string, string>) => m.value(name, labels) - before.value(name, labels);
    expect(delta('nv_inference_request_failure', { model: 'demo', version: '1', reason: 'OTHER' })).toBe(1);
    expect(delta('nv_inference_request_failure', { model: 'demo', reason: 'BACKEND' })).toBe(0);
    // An unknown model is no request of any model: only its HTTP status is counted.
    expect(m.find('nv_inference_request_success', { model: 'nothing' })).toEqual([]);
    expect(delta('ensemble_http_responses_total', { method: 'POST', code: '400' })).toBe(1);
    expect(delta('ensemble_http_responses_total', { method: 'POST', code: '404' })).toBe(1);
    expect(delta('ensemble_http_responses_total', { method: 'GET', code: '404' })).toBe(1);
    // The scrape before this one is counted too.
    expect(delta('ensemble_http_responses_total', { method: 'GET', code: '200' })).toBeGreaterThanOrEqual(1);
  });

  it('shows a waiting request as pending and its items as queued; a 429 is REJECTED, a client gone away CANCELED', async () => {
    const before = await scrape();
    const gone = new AbortController();
    const waiting = held(3, gone.signal).catch((e: unknown) => e);
    const m = await until((x) => x.value('ensemble_stage_queue_depth', { model: 'held.pass' }) === 3);
    expect(m.value('nv_inference_pending_request_count', { model: 'held' })).toBe(1);
    expect(m.value('nv_inference_pending_request_count', { model: 'held.pass', stage: 'pass' })).toBe(3);

    const refused = await held(1);
    expect(refused.status).toBe(429);
    gone.abort();
    expect(await waiting).toBeInstanceOf(Error);

    const after = await until((x) => x.value('nv_inference_pending_request_count', { model: 'held' }) === 0
      && x.value('nv_inference_request_failure', { model: 'held', reason: 'CANCELED' }) > before.value('nv_inference_request_failure', { model: 'held', reason: 'CANCELED' }));
    const delta = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    expect(delta('nv_inference_request_failure', { model: 'held', reason: 'REJECTED' })).toBe(1);
    expect(delta('nv_inference_request_failure', { model: 'held', reason: 'CANCELED' })).toBe(1);
    expect(delta('nv_inference_request_success', { model: 'held' })).toBe(0);
    expect(after.value('ensemble_stage_queue_depth', { model: 'held.pass' })).toBe(0);
    expect(delta('ensemble_http_responses_total', { code: '429' })).toBe(1);

  });
});

describe('GET /metrics behind API keys', () => {
  let keyed: RunningServer;
  beforeAll(async () => {
    keyed = await startServer({
      port: 0, dataDir: join(root, 'data-keyed'), modelsDir: join(root, 'models'), pipelines: ['held'],
      env: { ENSEMBLE_API_KEYS: 'scoped=held;admin=*' }, log: () => undefined,
    });
  });
  afterAll(async () => { await keyed?.close(); });

  it('needs a key, and one for every pipeline: the series span them all', async () => {
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401);
    const scoped = await fetch(`${keyed.url}/metrics`, { headers: { 'x-api-key': 'scoped' } });
    expect(scoped.status).toBe(403);
    expect(await scoped.json()).toEqual({ error: "metrics cover every pipeline: scrape with an API key for all pipelines ('*')" });
    const m = await scrape({ authorization: 'Bearer admin' }, keyed.url);
    expect(m.value('ensemble_http_responses_total', { code: '401' })).toBe(1);
    expect(m.value('ensemble_http_responses_total', { code: '403' })).toBe(1);
  });
});
