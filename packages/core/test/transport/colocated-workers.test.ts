/**
 * Function stages in the worker process of the ONNX stage they feed or whose
 * outputs they read (WorkerPoolTransport.view, placement/placement.ts): the
 * executor walks a DAG without them, the worker runs them around its session
 * (one in TypeScript, loaded through the worker's require hook, one plain ES
 * module), only what the gateway reads crosses back, and an item one of them
 * fails on fails alone. Real worker processes, ONNX Runtime and S3 emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { WorkerPoolTransport } from '../../src/transport/worker-pool.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest, OnnxStage } from '../../src/manifest/types.js';
import { Executor } from '../../src/executor/executor.js';
import type { Tensor } from '../../src/tensor/types.js';
import { scaleModel, writeModel } from '../fixtures/models.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';
import { removePipelines, writePipeline } from '../manifest/helpers.js';
import type { BatchEvent } from '../../src/observability/events.js';
import { rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let local: Local;
let weights: S3WeightStore;
let manifest: Manifest;

/**
 * x doubled before the model (x3); after it the index of the largest score,
 * and the pid of the process that found it. `twice` would cross as many bytes
 * as it reads, so only `placement: with_model` moves it (and with it, what
 * `top` reads is all in the worker).
 */
const pipeline = (sha256: string) => `
name: colo
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs:
  - { name: label, datatype: INT64, shape: [-1] }
  - { name: pid, datatype: INT64, shape: [-1] }
stages:
  - name: twice
    kind: function
    module: stages/twice.ts
    placement: with_model
    inputs: [x]
    outputs: [{ name: x2, datatype: FP32, shape: [-1, 4] }]
  - name: model
    kind: onnx
    weights: { key: t/scale.onnx, sha256: ${sha256} }
    inputs: { x: x2 }
    outputs: { y: scores }
    batch: { max_size: 2, max_delay_ms: 200 }
  - name: top
    kind: function
    module: stages/top.mjs
    placement: with_model
    inputs: [scores, x]
    outputs:
      - { name: best, datatype: INT64, shape: [-1] }
      - { name: pid, datatype: INT64, shape: [-1] }
  - name: name
    kind: function
    module: stages/name.mjs
    inputs: [best]
    outputs: [{ name: label, datatype: INT64, shape: [-1] }]
`;

const MODULES = {
  // TypeScript, as the stage modules in models/ are: the worker compiles it with the hook it runs under.
  'stages/twice.ts': `interface T { datatype: string; shape: number[]; data: Float32Array }
export default { process: ({ x }: { x: T }) => ({ x2: { datatype: 'FP32', shape: [...x.shape], data: x.data.map((v: number) => v * 2) } }) };\n`,
  'stages/top.mjs': `export default { process: ({ scores, x }) => {
  if (x.data[0] < 0) throw new Error('x[0] is negative');
  const s = scores.data; let best = 0;
  for (let i = 1; i < s.length; i++) if (s[i] > s[best]) best = i;
  return { best: { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(best)) }, pid: { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(process.pid)) } };
} };\n`,
  'stages/name.mjs': `export default { process: ({ best }) => ({ label: best }) };\n`,
  // top, whose init refuses a pipeline called 'refused'.
  'stages/picky.mjs': `import top from './top.mjs';
export default { ...top, init: (ctx) => { if (ctx.pipeline === 'refused') throw new Error('not for refused'); } };\n`,
  // Like top, but its "best" is the length of the pipeline name in its context.
  'stages/tag.mjs': `export default { process: (_item, ctx) => ({
  best: { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(ctx.pipeline.length)) },
  pid: { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(process.pid)) },
}) };\n`,
};

/**
 * A pipeline called `name` in a folder of its own that names the first
 * pipeline's module files (as models/ocr-split names models/ocr's), with
 * `after` in top's place: it shares the first's worker.
 */
async function sameFiles(name: string, after: string): Promise<{ m: Manifest; dir: string }> {
  const sha256 = manifest.stages.find((s): s is OnnxStage => s.kind === 'onnx')!.weights.sha256;
  const from = (f: string) => join(manifest.dir, f);
  const { file, dir } = await writePipeline(pipeline(sha256).replace('name: colo', `name: ${name}`)
    .replace('stages/twice.ts', from('stages/twice.ts')).replace('stages/top.mjs', from(after)).replace('stages/name.mjs', from('stages/name.mjs')));
  return { m: await loadManifest(file), dir };
}

const x = (v: number[]): Record<string, Tensor> => ({ x: { datatype: 'FP32', shape: [1, 4], data: Float32Array.from(v) } });
const int = (t: Tensor | undefined) => Number((t!.data as BigInt64Array)[0]);

beforeAll(async () => {
  tmp = await tempDir('colocated-workers');
  local = await startLocal(join(tmp.dir, 'data'));
  await ensureBucket(local.s3, 'weights');
  const scale = await writeModel(tmp.dir, 'scale.onnx', scaleModel(3));
  await pushObject({ s3: local.s3, bucket: 'weights', key: 't/scale.onnx', file: scale.path });
  weights = new S3WeightStore({ s3: local.s3, bucket: 'weights', cacheDir: join(tmp.dir, 'cache') });
  const { file } = await writePipeline(pipeline(scale.sha256), MODULES);
  manifest = await loadManifest(file);
});

afterAll(async () => {
  await local?.close();
  await removePipelines();
  await tmp?.cleanup();
});

describe('function stages in the worker of their ONNX stage', () => {
  it('leaves the stages it moves out of the DAG the executor walks, and widens the ONNX stage to the group', () => {
    const view = new WorkerPoolTransport(weights).view(manifest);
    expect(view.stages.map((s) => s.name)).toEqual(['model', 'name']);
    const model = view.stages.find((s): s is OnnxStage => s.name === 'model')!;
    expect(model.inputs).toEqual({ x: 'x' });
    // scores stays in the worker: only top reads it, and top runs there.
    expect(Object.values(model.outputs).sort()).toEqual(['best', 'pid']);
    // Without co-location, and for an inline stage, the manifest is walked as it is.
    expect(new WorkerPoolTransport(weights, { colocate: false }).view(manifest)).toBe(manifest);
    const inline: Manifest = {
      ...manifest,
      stages: manifest.stages.map((s) => (s.kind === 'onnx' ? { ...s, scale: { ...s.scale, isolation: 'inline' as const } } : s)),
    };
    expect(new WorkerPoolTransport(weights).view(inline)).toBe(inline);
  });

  it('runs them in the worker process, with the same results as in the gateway', async () => {
    const results: Record<string, { label: number; pid: number; worker: number | undefined }> = {};
    for (const colocate of [true, false]) {
      const pool = new WorkerPoolTransport(weights, { colocate });
      const ex = await Executor.create(manifest, pool);
      try {
        const r = await ex.run(x([1, 5, 2, 3]));
        results[String(colocate)] = { label: int(r.outputs.label), pid: int(r.outputs.pid), worker: pool.workersOf('colo', 'model')[0]?.pid };
        // The stages' work, measured in the worker, is not counted as session.run's.
        const usage = pool.usage('colo', 'model')!;
        if (colocate) expect(usage.colocatedCpuMs).toBeGreaterThan(0);
        else expect(usage.colocatedCpuMs).toBe(0);
        // (Unless the shell running the tests set the variable itself: then every worker has it.)
        if (process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ === undefined) {
          // A worker that runs function stages keeps glibc's dynamic mmap threshold (their per-batch arrays
          // come back from the heap); one that runs the model alone has it fixed (worker-pool.test.ts).
          const environ = readFileSync(`/proc/${pool.workersOf('colo', 'model')[0].pid}/environ`, 'utf8').split('\0');
          expect(environ.includes('MALLOC_MMAP_THRESHOLD_=131072')).toBe(!colocate);
        }
      } finally {
        await ex.close();
        await pool.close();
      }
    }
    expect(results.true.label).toBe(1);
    expect(results.false.label).toBe(1);
    expect(results.true.pid).toBe(results.true.worker);
    expect(results.true.pid).not.toBe(process.pid);
    expect(results.false.pid).toBe(process.pid);
  });

  it('fails an item a co-located stage refuses alone: the other request in its batch is answered', async () => {
    const pool = new WorkerPoolTransport(weights);
    const ex = await Executor.create(manifest, pool);
    try {
      // Both reach the model within its 200 ms delay, so they share a batch (max_size 2).
      const [good, bad] = await Promise.allSettled([ex.run(x([0, 0, 9, 1])), ex.run(x([-1, 0, 0, 7]))]);
      expect(good.status).toBe('fulfilled');
      expect(int((good as PromiseFulfilledResult<Awaited<ReturnType<Executor['run']>>>).value.outputs.label)).toBe(2);
      expect(bad.status).toBe('rejected');
      expect(String((bad as PromiseRejectedResult).reason)).toMatch(/stage 'top'.*x\[0\] is negative/);
      const u = pool.usage('colo', 'model')!;
      expect(u.batches).toBe(1);
      expect(u.items).toBe(2);
    } finally {
      await ex.close();
      await pool.close();
    }
  });

  it('shares a worker with a pipeline whose co-located stages are the same files, each run with its own context', async () => {
    const { m: first } = await sameFiles('colo', 'stages/tag.mjs');
    const { m: second } = await sameFiles('colocated-too', 'stages/tag.mjs');
    const pool = new WorkerPoolTransport(weights);
    const runs = [await Executor.create(first, pool), await Executor.create(second, pool)];
    try {
      expect(pool.workerCount()).toBe(1);
      const out = await Promise.all(runs.map((ex) => ex.run(x([0, 1, 0, 0]))));
      expect(int(out[0].outputs.pid)).toBe(int(out[1].outputs.pid));
      // tag.mjs answers the length of the pipeline name its context carries, as its best.
      expect(out.map((r) => int(r.outputs.label))).toEqual(['colo'.length, 'colocated-too'.length]);
    } finally {
      for (const ex of runs) await ex.close();
      await pool.close();
    }
  });

  it('counts each co-located stage as a batch of its own, and only the rest as the model stage\'s', async () => {
    const pool = new WorkerPoolTransport(weights);
    const events: BatchEvent[] = [];
    const ex = await Executor.create(manifest, pool, { observer: { batch: (e) => { events.push(e); } } });
    try {
      await Promise.allSettled([ex.run(x([1, 2, 3, 4])), ex.run(x([-1, 0, 0, 7]))]);
      const by = (stage: string) => events.filter((e) => e.stage === stage);
      expect(by('twice')).toMatchObject([{ size: 2, failedItems: 0, within: 'model' }]);
      // top refused one item: that failure is top's, not the model's.
      expect(by('top')).toMatchObject([{ size: 2, failedItems: 1, within: 'model' }]);
      const [model] = by('model');
      expect(model).toMatchObject({ size: 2, failedItems: 0 });
      expect(model.within).toBeUndefined();
      // The model's compute is the call's less what the co-located stages took of it.
      expect(model.computeMs).toBeLessThan(model.callMs);
    } finally {
      await ex.close();
      await pool.close();
    }
  });

  it('refuses to load a pipeline whose co-located stages cannot start in the running worker it joins; the one already served keeps it', async () => {
    // The same module files for both, so both join one worker; picky's init refuses the second pipeline's context.
    const { m: served } = await sameFiles('served', 'stages/picky.mjs');
    const { m: refused } = await sameFiles('refused', 'stages/picky.mjs');
    const pool = new WorkerPoolTransport(weights);
    const first = await Executor.create(served, pool);
    try {
      const [worker] = pool.workersOf('served', 'model');
      await expect(Executor.create(refused, pool)).rejects.toThrow(/not for refused/);
      expect(pool.health('refused')).toEqual([]);
      expect(int((await first.run(x([0, 0, 0, 1]))).outputs.label)).toBe(3);
      expect(pool.workersOf('served', 'model')).toEqual([worker]);
    } finally {
      await first.close();
      await pool.close();
    }
  });

  it('drops a pipeline\'s context when it unloads: a restarted worker serves the others without its (deleted) folder', async () => {
    const { m: a } = await sameFiles('alpha', 'stages/tag.mjs');
    const b = await sameFiles('beta-pipeline', 'stages/tag.mjs');
    const bm = b.m;
    const pool = new WorkerPoolTransport(weights);
    const ea = await Executor.create(a, pool);
    const eb = await Executor.create(bm, pool);
    try {
      expect(pool.workerCount()).toBe(1);
      expect(int((await eb.run(x([1, 0, 0, 0]))).outputs.label)).toBe('beta-pipeline'.length);
      await eb.close();
      await pool.unload('beta-pipeline');
      await rm(b.dir, { recursive: true, force: true });
      const [worker] = pool.workersOf('alpha', 'model');
      const exited = new Promise((r) => worker.once('exit', r));
      worker.kill('SIGKILL');
      await exited;
      // The replacement starts with alpha's context alone, and serves it.
      let label: number | undefined;
      for (let i = 0; i < 50 && label === undefined; i++) {
        try { label = int((await ea.run(x([1, 0, 0, 0]))).outputs.label); } catch { await new Promise((r) => setTimeout(r, 200)); }
      }
      expect(label).toBe('alpha'.length);
      expect(pool.workersOf('alpha', 'model')[0].pid).not.toBe(worker.pid);
    } finally {
      await ea.close();
      await pool.close();
    }
  });

  it('shares a worker between versions of one pipeline, not with a pipeline whose co-located stages differ', async () => {
    const pool = new WorkerPoolTransport(weights);
    // The same ONNX stage (weights, settings), but its own stage modules in its own folder.
    const sha256 = manifest.stages.find((s): s is OnnxStage => s.kind === 'onnx')!.weights.sha256;
    const { file } = await writePipeline(pipeline(sha256).replace('name: colo', 'name: other'), MODULES);
    const other = await loadManifest(file);
    const runs: Executor[] = [];
    try {
      for (const [m, address] of [[manifest, 'colo@1'], [manifest, 'colo@2'], [other, 'other']] as const) {
        runs.push(await Executor.create(m, pool, { address }));
      }
      expect(pool.workerCount()).toBe(2);
      const pids = await Promise.all(runs.map(async (ex) => int((await ex.run(x([1, 0, 0, 0]))).outputs.pid)));
      expect(pids[0]).toBe(pids[1]);
      expect(pids[2]).not.toBe(pids[0]);
    } finally {
      for (const ex of runs) await ex.close();
      await pool.close();
    }
  });
});
