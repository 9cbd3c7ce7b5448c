import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkerPoolTransport, workerEnv } from '../../src/transport/worker-pool.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest } from '../../src/manifest/types.js';
import type { Item } from '../../src/tensor/types.js';
import { EnsembleError, StageError, TimeoutError } from '../../src/errors.js';
import { scaleModel, slowModel, writeModel } from '../fixtures/models.js';
import { startDeadline } from '../../src/deadline.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';
import { PipelineRegistry } from '../../src/pipelines/registry.js';
import { createApp } from '../../src/http/app.js';
import { DynamoRunStore } from '../../src/storage/dynamo-runs.js';
import { removePipelines, writePipeline } from '../manifest/helpers.js';
import { PrometheusMetrics } from '../../src/observability/metrics.js';
import { parseExposition } from '../observability/prometheus-text.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let local: Local;
let weights: S3WeightStore;
let manifest: Manifest;

function row(v: number[]): Item {
  return { x: { datatype: 'FP32', shape: [4], data: Float32Array.from(v) } };
}

beforeAll(async () => {
  tmp = await tempDir('pool');
  local = await startLocal(join(tmp.dir, 'data'));
  await ensureBucket(local.s3, 'weights');
  const scale = await writeModel(tmp.dir, 'scale.onnx', scaleModel(3));
  const slow = await writeModel(tmp.dir, 'slow.onnx', slowModel());
  for (const [key, m] of [['t/scale.onnx', scale], ['t/slow.onnx', slow]] as const) {
    await pushObject({ s3: local.s3, bucket: 'weights', key, file: m.path });
  }
  weights = new S3WeightStore({ s3: local.s3, bucket: 'weights', cacheDir: join(tmp.dir, 'cache') });
  const { file } = await writePipeline(`
name: pool
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }, { name: z, datatype: FP32, shape: [-1, 4] }]
stages:
  - name: triple
    kind: onnx
    weights: { key: t/scale.onnx, sha256: ${scale.sha256} }
    inputs: { x: x }
    outputs: { y: y }
    scale: { instances: 2 }
  - name: slow
    kind: onnx
    weights: { key: t/slow.onnx, sha256: ${slow.sha256} }
    inputs: { x: x }
    outputs: { y: z }
    timeout_ms: 1500
`);
  manifest = await loadManifest(file);
});

afterAll(async () => {
  await local?.close();
  await removePipelines();
  await tmp?.cleanup();
});

describe('WorkerPoolTransport', () => {
  it('runs a stage with scale.isolation inline in this process, next to worker-process stages', async () => {
    const pool = new WorkerPoolTransport(weights);
    const mixed: Manifest = {
      ...manifest,
      stages: manifest.stages.map((s) => (s.name === 'triple' ? { ...s, scale: { ...s.scale, isolation: 'inline' as const } } : s)),
    };
    try {
      await pool.load(mixed);
      expect(pool.workersOf('pool', 'triple')).toHaveLength(0);
      expect(pool.workersOf('pool', 'slow')).toHaveLength(1);
      const first = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4]), row([-1, 0, 0.5, 2])]);
      const out = first.outcomes.map((o) => (o.ok ? Array.from(o.items[0].y.data as Float32Array) : o.error));
      expect(out).toEqual([[3, 6, 9, 12], [-3, 0, 1.5, 6]]);
      expect(first.coldStart).toBe(true);
      // Its two sessions serve two batches at once.
      const both = await Promise.all([pool.invoke('pool', 'triple', [row([1, 1, 1, 1])]), pool.invoke('pool', 'triple', [row([2, 2, 2, 2])])]);
      expect(both.map((r) => (r.outcomes[0].ok ? Array.from(r.outcomes[0].items[0].y.data as Float32Array) : r.outcomes[0].error)))
        .toEqual([[3, 3, 3, 3], [6, 6, 6, 6]]);
    } finally {
      await pool.close();
    }
  });

  it("names the stage once when the worker's session fails on a batch", async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(manifest);
      // Five values where the model takes [batch, 4]: ONNX Runtime refuses the run in the worker.
      const bad: Item = { x: { datatype: 'FP32', shape: [5], data: Float32Array.of(1, 2, 3, 4, 5) } };
      const e = await pool.invoke('pool', 'triple', [bad]).then(() => undefined, (err: unknown) => err as Error);
      expect(e?.message).toMatch(/^stage 'triple' failed: /);
      expect(e?.message.split("stage 'triple'")).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  it('runs a batch in a worker process and reports the first call as the cold start', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(manifest);
      expect(pool.workersOf('pool', 'triple')).toHaveLength(2);
      const first = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4]), row([-1, 0, 0.5, 2])]);
      const out = first.outcomes.map((o) => (o.ok ? Array.from(o.items[0].y.data as Float32Array) : o.error));
      expect(out).toEqual([[3, 6, 9, 12], [-3, 0, 1.5, 6]]);
      expect(first.coldStart).toBe(true);
      expect(first.initMs).toBeGreaterThan(0);
      // Two instances: each is cold once, then warm.
      const more = await Promise.all([0, 1, 2, 3].map(() => pool.invoke('pool', 'triple', [row([1, 1, 1, 1])])));
      expect(more.filter((r) => r.coldStart).length).toBeLessThanOrEqual(1);
    } finally {
      await pool.close();
    }
  });

  it("chooses a batch's intra-op threads by load: the stage's threads on idle cores, one where other batches hold them", async () => {
    // One core; two instances of a two-thread stage.
    const pool = new WorkerPoolTransport(weights, { cores: 1 });
    const wide: Manifest = { ...manifest, stages: manifest.stages.map((s) => (s.name === 'triple' ? { ...s, scale: { ...s.scale, threads: 2 } } : s)) };
    try {
      await pool.load(wide);
      const alone = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4])]);
      expect(alone.threads).toBe(2);
      // Sent together: the first takes the core, so the second runs on its worker's one-thread session.
      const both = await Promise.all([pool.invoke('pool', 'triple', [row([1, 1, 1, 1])]), pool.invoke('pool', 'triple', [row([2, 2, 2, 2])])]);
      expect(both.map((r) => r.threads).sort()).toEqual([1, 2]);
      expect(both.map((r) => (r.outcomes[0].ok ? Array.from(r.outcomes[0].items[0].y.data as Float32Array) : r.outcomes[0].error))).toEqual([[3, 3, 3, 3], [6, 6, 6, 6]]);
      // Once they are done the cores are free again.
      expect((await pool.invoke('pool', 'triple', [row([1, 2, 3, 4])])).threads).toBe(2);
      // A one-thread stage is never narrowed and says so.
      expect((await pool.invoke('pool', 'slow', [row([1, 2, 3, 4])])).threads).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('fixes the mmap threshold only for a worker that runs its model alone, and a value the user set wins', () => {
    expect(workerEnv(false, { PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '131072' });
    expect(workerEnv(false, { MALLOC_MMAP_THRESHOLD_: '4096' }).MALLOC_MMAP_THRESHOLD_).toBe('4096');
    expect(workerEnv(true, { PATH: '/bin' })).toEqual({ PATH: '/bin' });
  });

  it.runIf(process.platform === 'linux')('starts a worker with a fixed glibc mmap threshold (what session creation frees goes back)', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(manifest);
      const [w] = pool.workersOf('pool', 'triple');
      const { readFileSync } = await import('node:fs');
      const environ = readFileSync(`/proc/${w.pid}/environ`, 'utf8').split('\0');
      expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=131072');
      const out = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4])]);
      expect(out.outcomes[0].ok).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('a killed worker fails only its own batch; the pool replaces it and keeps serving', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(manifest);
      const [victim] = pool.workersOf('pool', 'slow');
      const inFlight = pool.invoke('pool', 'slow', [row([1, 2, 3, 4])]);
      await new Promise((r) => setTimeout(r, 30));
      victim.kill('SIGKILL');
      await expect(inFlight).rejects.toBeInstanceOf(StageError);
      await expect(inFlight).rejects.toThrow(/stage 'slow'.*exited/);
      // A healthy stage is untouched, and the replaced one serves the next batch.
      const next = await pool.invoke('pool', 'slow', [row([1, 2, 3, 4])]);
      expect(next.outcomes[0].ok).toBe(true);
      expect(pool.workersOf('pool', 'slow')[0]).not.toBe(victim);
    } finally {
      await pool.close();
    }
  });

  it('counts a killed worker as a restart of its stage in the metrics', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    const pool = new WorkerPoolTransport(weights, { observer: metrics });
    const restarts = async () => parseExposition((await metrics.scrape()).body)
      .value('ensemble_stage_worker_restarts_total', { model: 'pool.triple', pipeline: 'pool', stage: 'triple', reason: 'stage_failed' });
    try {
      await pool.load(manifest);
      expect(await restarts()).toBe(0);
      const [victim] = pool.workersOf('pool', 'triple');
      victim.kill('SIGKILL');
      for (let i = 0; i < 200 && pool.workersOf('pool', 'triple').includes(victim); i++) await new Promise((r) => setTimeout(r, 10));
      expect(pool.workersOf('pool', 'triple')).not.toContain(victim);
      expect(await restarts()).toBe(1);
      // The other stage's workers were not touched.
      expect(parseExposition((await metrics.scrape()).body).value('ensemble_stage_worker_restarts_total', { stage: 'slow' })).toBe(0);
      const ok = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4])]);
      expect(ok.outcomes[0].ok).toBe(true);
    } finally {
      await pool.close();
    }
    // Workers stopped by close() are no restarts.
    expect(await restarts()).toBe(1);
  });

  it('a batch whose deadline signal aborts gets 504 and the hung worker is restarted', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(manifest);
      const before = pool.workersOf('pool', 'slow')[0];
      // slowModel's cost grows with the batch: 64 rows take far longer than the 1.5 s timeout.
      const big = Array.from({ length: 64 }, (_, i) => row([i, 1, 2, 3]));
      // The deadline is the caller's (the batcher's): the pool keeps no timer of its own.
      const deadline = startDeadline(1500, () => new TimeoutError("stage 'slow' timed out after 1500 ms"));
      const err = await pool.invoke('pool', 'slow', big, deadline.signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).code).toBe('timeout');
      expect((err as Error).message).toBe("stage 'slow' timed out after 1500 ms (worker restarted)");
      expect(pool.workersOf('pool', 'slow')[0]).not.toBe(before);
      const ok = await pool.invoke('pool', 'slow', [row([1, 2, 3, 4])]);
      expect(ok.outcomes[0].ok).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('close() drains by default: a batch in flight finishes with its results, then the workers stop', async () => {
    const pool = new WorkerPoolTransport(weights);
    await pool.load(manifest);
    const [worker] = pool.workersOf('pool', 'slow');
    const order: string[] = [];
    // Several slow rows: a few hundred ms of work in the worker.
    const batch = pool.invoke('pool', 'slow', Array.from({ length: 4 }, (_, i) => row([i, 1, 2, 3])))
      .then((r) => { order.push('batch'); return r; }, (e: unknown) => { order.push('batch failed'); throw e; });
    await new Promise((r) => setTimeout(r, 50));
    const closed = pool.close().then(() => { order.push('closed'); });
    // No new work once closing.
    const refused = await pool.invoke('pool', 'triple', [row([1, 2, 3, 4])]).catch((e: unknown) => e);
    expect((refused as EnsembleError).code).toBe('not_ready');
    const result = await batch;
    await closed;
    expect(order).toEqual(['batch', 'closed']);
    expect(result.outcomes).toHaveLength(4);
    expect(result.outcomes.every((o) => o.ok)).toBe(true);
    expect(worker.exitCode !== null || worker.signalCode !== null).toBe(true);
  });

  it('close({ drain: false }) fails a batch in flight at once with 503 and kills its worker', async () => {
    const pool = new WorkerPoolTransport(weights);
    await pool.load(manifest);
    const [worker] = pool.workersOf('pool', 'slow');
    // Seconds of work: only the shutdown can end it early.
    const batch = pool.invoke('pool', 'slow', Array.from({ length: 24 }, (_, i) => row([i, 1, 2, 3]))).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    const closed = pool.close({ drain: false });
    const err = await batch;
    const failedAfter = performance.now() - t0;
    await closed;
    const closedAfter = performance.now() - t0;
    expect(err).toBeInstanceOf(EnsembleError);
    expect((err as EnsembleError).code).toBe('not_ready');
    expect((err as Error).message).toContain("stage 'slow' is shutting down");
    expect(failedAfter).toBeLessThan(500);
    expect(closedAfter).toBeLessThan(1000);
    for (let i = 0; i < 100 && worker.exitCode === null && worker.signalCode === null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(worker.signalCode).toBe('SIGKILL');
  });

  it('a stage whose workers cannot start fails its batches fast, then backs off and answers 503', async () => {
    // Bytes that are not an ONNX model, pinned by their real sha256: weights resolve, the session does not.
    const junk = await writeModel(tmp.dir, 'junk.onnx', new TextEncoder().encode('not a model'));
    await pushObject({ s3: local.s3, bucket: 'weights', key: 't/junk.onnx', file: junk.path });
    const { file } = await writePipeline(`
name: junk
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
stages:
  - name: bad
    kind: onnx
    weights: { key: t/junk.onnx, sha256: ${junk.sha256} }
    inputs: { x: x }
    outputs: { y: y }
`);
    const junkManifest = await loadManifest(file);
    const pool = new WorkerPoolTransport(weights);
    try {
      await expect(pool.load(junkManifest)).rejects.toThrow(/stage 'bad'/);
      const errors: unknown[] = [];
      for (let i = 0; i < 4; i++) errors.push(await pool.invoke('junk', 'bad', [row([1, 2, 3, 4])]).catch((e: unknown) => e));
      for (const e of errors) expect(e).toBeInstanceOf(EnsembleError);
      // Each failed start was replaced until the limit; after it the stage answers 503 without a worker.
      expect((errors[3] as EnsembleError).code).toBe('not_ready');
      expect((errors[3] as Error).message).toMatch(/failed to start 3 times/);
      // It backs off instead of respawning at once: at most the one worker of its next try.
      expect(pool.workersOf('junk', 'bad').length).toBeLessThanOrEqual(1);
      expect(pool.health('junk')).toEqual([{ stage: 'bad', ready: false, reason: expect.stringMatching(/failed to start/), retryInMs: expect.any(Number), workers: 0 }]);
    } finally {
      await pool.close();
    }
  });

  it('a stage whose new workers keep failing is not ready, says why, keeps retrying and serves again once one starts', async () => {
    const good = await writeModel(tmp.dir, 'five.onnx', scaleModel(5));
    await pushObject({ s3: local.s3, bucket: 'weights', key: 't/five.onnx', file: good.path });
    const { file } = await writePipeline(`
name: flaky
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
stages:
  - name: five
    kind: onnx
    weights: { key: t/five.onnx, sha256: ${good.sha256} }
    inputs: { x: x }
    outputs: { y: y }
`);
    const m = await loadManifest(file);
    const pool = new WorkerPoolTransport(weights);
    const registry = new PipelineRegistry(pool);
    const app = createApp({ registry, runs: new DynamoRunStore({ dynamo: local.dynamo, table: 'runs' }) });
    const get = async (path: string) => { const r = await app.request(path); return { status: r.status, body: await r.json() as Record<string, any> }; };
    const modelFile = await weights.resolve('t/five.onnx', good.sha256);
    try {
      await registry.add(m);
      expect(await get('/v2/health/ready')).toEqual({ status: 200, body: { ready: true } });
      expect((await get('/v2/models/flaky')).body.parameters).toEqual({ ready: true, stages_down: '' });

      // The worker is killed (as by the OOM killer); meanwhile its cached weights and the bucket's copy went bad,
      // so every fresh worker fails to start: the cache copy is dropped, the download does not match.
      await writeFile(modelFile, 'not a model any more');
      await local.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: 't/five.onnx', Body: 'not the model either', Metadata: { sha256: good.sha256 } }));
      pool.workersOf('flaky', 'five')[0].kill('SIGKILL');
      await until(() => !registry.isReady('flaky'), 20_000);
      expect(await get('/v2/health/ready')).toEqual({ status: 503, body: { ready: false } });
      expect(await get('/v2/models/flaky/ready')).toEqual({ status: 503, body: { name: 'flaky', ready: false } });
      const meta = await get('/v2/models/flaky');
      expect(meta.status).toBe(200);
      expect(meta.body).toMatchObject({ name: 'flaky', versions: ['1'], platform: 'ensemble', inputs: [{ name: 'x' }], outputs: [{ name: 'y' }] });
      expect(meta.body.parameters.ready).toBe(false);
      // The protocol's parameters are scalars: the names there, each stage's reason and retry beside them.
      expect(meta.body.parameters.stages_down).toBe('five');
      expect(meta.body.stages_down).toEqual([{ stage: 'five', reason: expect.stringMatching(/failed to start 3 times/), retry_in_ms: expect.any(Number) }]);
      expect(meta.body.stages_down[0].reason).toContain(`expected ${good.sha256}`);
      expect(meta.body.parameters.reason).toMatch(/stage 'five' is down/);
      const refused = await pool.invoke('flaky', 'five', [row([1, 2, 3, 4])]).catch((e: unknown) => e);
      expect((refused as EnsembleError).code).toBe('not_ready');

      // The cause passes (the object is pushed again): a later try starts a worker and the stage serves again.
      expect((await pushObject({ s3: local.s3, bucket: 'weights', key: 't/five.onnx', file: good.path })).repaired).toBe(true);
      await until(() => registry.isReady('flaky'), 30_000);
      expect(await get('/v2/health/ready')).toEqual({ status: 200, body: { ready: true } });
      const r = await pool.invoke('flaky', 'five', [row([1, 2, 3, 4])]);
      expect(r.outcomes.map((o) => (o.ok ? Array.from(o.items[0].y.data as Float32Array) : o.error))).toEqual([[5, 10, 15, 20]]);
    } finally {
      await registry.close();
    }
  }, 60_000);
});

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
