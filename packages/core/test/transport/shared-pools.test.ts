/** Identical ONNX stages of different pipelines share one set of worker processes, unless a manifest says `scale.share: false`. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { WorkerPoolTransport } from '../../src/transport/worker-pool.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { pushObject } from '@ensemble/tools/pipelines/upload.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest } from '../../src/manifest/types.js';
import type { Item } from '../../src/tensor/types.js';
import type { BatchResult } from '../../src/runtime/types.js';
import { ManifestError } from '../../src/errors.js';
import { scaleModel, writeModel } from '../fixtures/models.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';
import { removePipelines, writePipeline } from '../manifest/helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let local: Local;
let weights: S3WeightStore;
let sha256 = '';
/** Other weights (x5) for a version of pipeline a whose model changed. */
let sha256x5 = '';

function row(v: number[]): Item {
  return { x: { datatype: 'FP32', shape: [4], data: Float32Array.from(v) } };
}

function values(r: BatchResult): unknown[] {
  return r.outcomes.map((o) => (o.ok ? Array.from(o.items[0].y.data as Float32Array) : o.error));
}

/** A pipeline with one ONNX stage on the shared weights (or others), under its own object key. */
async function pipeline(name: string, stage: string, scale = '{ instances: 2 }', model = { key: `${name}/scale.onnx`, sha256: '' }): Promise<Manifest> {
  const { file } = await writePipeline(`
name: ${name}
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
stages:
  - name: ${stage}
    kind: onnx
    weights: { key: ${model.key}, sha256: ${model.sha256 || sha256} }
    inputs: { x: x }
    outputs: { y: y }
    scale: ${scale}
`);
  return loadManifest(file);
}

function exited(w: ChildProcess): boolean { return w.exitCode !== null || w.signalCode !== null; }

beforeAll(async () => {
  tmp = await tempDir('shared-pools');
  local = await startLocal(join(tmp.dir, 'data'));
  await ensureBucket(local.s3, 'weights');
  const model = await writeModel(tmp.dir, 'scale.onnx', scaleModel(3));
  sha256 = model.sha256;
  for (const key of ['a/scale.onnx', 'b/scale.onnx']) await pushObject({ s3: local.s3, bucket: 'weights', key, file: model.path });
  const x5 = await writeModel(tmp.dir, 'scale5.onnx', scaleModel(5));
  sha256x5 = x5.sha256;
  await pushObject({ s3: local.s3, bucket: 'weights', key: 'a/scale5.onnx', file: x5.path });
  weights = new S3WeightStore({ s3: local.s3, bucket: 'weights', cacheDir: join(tmp.dir, 'cache') });
});

afterAll(async () => {
  await local?.close();
  await removePipelines();
  await tmp?.cleanup();
});

describe('worker pools shared across pipelines', () => {
  it('two pipelines with the same stage start one set of workers, both are served by it, and it stops with its last pipeline', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(await pipeline('a', 'triple'));
      await pool.load(await pipeline('b', 'times3'));
      const workers = pool.workersOf('a', 'triple');
      expect(workers).toHaveLength(2);
      expect(pool.workersOf('b', 'times3')).toEqual(workers);
      expect(pool.workerCount()).toBe(2);

      // Batches of both pipelines at once, more than the two workers: they queue for the shared workers.
      const results = await Promise.all([1, 2, 3, 4].map((i) => pool.invoke(i % 2 ? 'a' : 'b', i % 2 ? 'triple' : 'times3', [row([i, 0, -i, 1])])));
      expect(results.map(values)).toEqual([1, 2, 3, 4].map((i) => [[3 * i, 0, -3 * i, 3]]));
      // One set of workers for both pipelines' stage, all of them up.
      expect(pool.health('b')).toEqual([{ stage: 'times3', ready: true, workers: 2 }]);

      // The other pipeline keeps the workers when one unloads.
      await pool.unload('a');
      expect(workers.some(exited)).toBe(false);
      await expect(pool.invoke('a', 'triple', [row([1, 1, 1, 1])])).rejects.toThrow(/not loaded/);
      expect(values(await pool.invoke('b', 'times3', [row([1, 2, 3, 4])]))).toEqual([[3, 6, 9, 12]]);
      expect(pool.health('a')).toEqual([]);

      await pool.unload('b');
      expect(workers.every(exited)).toBe(true);
      expect(pool.workerCount()).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('keeps two versions of one pipeline apart by address: an unchanged stage joins the old pool, unloading one version releases only its own', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(await pipeline('a', 'triple'));
      await pool.load(await pipeline('b', 'times3'));
      const shared = pool.workersOf('a', 'triple');
      // A reload of a with the same stage: the new version is served by the same workers, none start.
      await pool.load(await pipeline('a', 'triple'), 'a#2');
      expect(pool.workersOf('a#2', 'triple')).toEqual(shared);
      expect(pool.workerCount()).toBe(2);
      const both = await Promise.all([pool.invoke('a', 'triple', [row([1, 1, 1, 1])]), pool.invoke('a#2', 'triple', [row([2, 2, 2, 2])])]);
      expect(both.map(values)).toEqual([[[3, 3, 3, 3]], [[6, 6, 6, 6]]]);

      // The old version goes; the new one and pipeline b keep the workers.
      await pool.unload('a');
      expect(shared.some(exited)).toBe(false);
      await expect(pool.invoke('a', 'triple', [row([1, 1, 1, 1])])).rejects.toThrow(/not loaded/);
      expect(pool.health('a')).toEqual([]);
      expect(pool.health('a#2')).toEqual([{ stage: 'triple', ready: true, workers: 2 }]);
      expect(values(await pool.invoke('a#2', 'triple', [row([1, 2, 3, 4])]))).toEqual([[3, 6, 9, 12]]);

      // A version whose weights changed gets workers of its own; the version before it still answers with the old weights.
      await pool.load(await pipeline('a', 'triple', '{ instances: 2 }', { key: 'a/scale5.onnx', sha256: sha256x5 }), 'a#3');
      const own = pool.workersOf('a#3', 'triple');
      expect(own.some((w) => shared.includes(w))).toBe(false);
      expect(pool.workerCount()).toBe(4);
      expect(values(await pool.invoke('a#3', 'triple', [row([1, 2, 3, 4])]))).toEqual([[5, 10, 15, 20]]);
      expect(values(await pool.invoke('a#2', 'triple', [row([1, 2, 3, 4])]))).toEqual([[3, 6, 9, 12]]);
      await pool.unload('a#2');
      expect(shared.some(exited)).toBe(false);
      expect(values(await pool.invoke('b', 'times3', [row([1, 1, 1, 1])]))).toEqual([[3, 3, 3, 3]]);

      // The shared workers stop with their last user; the newest version's stay.
      await pool.unload('b');
      expect(shared.every(exited)).toBe(true);
      expect(own.some(exited)).toBe(false);
      expect(pool.workerCount()).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('gives a stage with scale.share: false, or with other session settings, workers of its own', async () => {
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(await pipeline('a', 'triple'));
      await pool.load(await pipeline('b', 'triple', '{ instances: 2, share: false }'));
      const own = pool.workersOf('b', 'triple');
      expect(own).toHaveLength(2);
      expect(own.some((w) => pool.workersOf('a', 'triple').includes(w))).toBe(false);
      expect(pool.workerCount()).toBe(4);
      expect(values(await pool.invoke('b', 'triple', [row([1, 2, 3, 4])]))).toEqual([[3, 6, 9, 12]]);
      expect(values(await pool.invoke('a', 'triple', [row([2, 2, 2, 2])]))).toEqual([[6, 6, 6, 6]]);
    } finally {
      await pool.close();
    }
    const threads = new WorkerPoolTransport(weights);
    try {
      await threads.load(await pipeline('a', 'triple', '{ instances: 1, threads: 1 }'));
      await threads.load(await pipeline('b', 'triple', '{ instances: 1, threads: 2 }'));
      expect(threads.workerCount()).toBe(2);
    } finally {
      await threads.close();
    }
  });

  it('gives stages that stack their batches along other axes workers of their own, though their weights and settings agree', async () => {
    const free = await writeModel(tmp.dir, 'free.onnx', scaleModel(3, ['n', 'm']));
    for (const key of ['a/free.onnx', 'b/free.onnx']) await pushObject({ s3: local.s3, bucket: 'weights', key, file: free.path });
    const rows = await pipeline('a', 'triple', '{ instances: 1 }', { key: 'a/free.onnx', sha256: free.sha256 });
    const { file } = await writePipeline(`
name: b
inputs: [{ name: x, datatype: FP32, shape: [4, -1], batch_axis: 1 }]
outputs: [{ name: y, datatype: FP32, shape: [4, -1], batch_axis: 1 }]
stages:
  - { name: triple, kind: onnx, weights: { key: b/free.onnx, sha256: ${free.sha256} }, inputs: { x: x }, outputs: { y: y }, scale: { instances: 1 } }
`);
    const columns = await loadManifest(file);
    expect(columns.stages[0].kind === 'onnx' && columns.stages[0].inputAxes).toEqual({ x: 1 });
    const pool = new WorkerPoolTransport(weights);
    try {
      await pool.load(rows);
      await pool.load(columns);
      expect(pool.workerCount()).toBe(2);
      expect(pool.workersOf('b', 'triple')[0]).not.toBe(pool.workersOf('a', 'triple')[0]);
      const two = [row([1, 2, 3, 4]), row([5, 6, 7, 8])];
      expect(values(await pool.invoke('b', 'triple', two))).toEqual([[3, 6, 9, 12], [15, 18, 21, 24]]);
      expect(values(await pool.invoke('a', 'triple', two))).toEqual([[3, 6, 9, 12], [15, 18, 21, 24]]);
    } finally {
      await pool.close();
    }
  });

  it('reads scale.share from the manifest, and refuses one that is not true or false', async () => {
    const own = await pipeline('c', 'triple', '{ share: false }');
    expect(own.stages[0].scale.share).toBe(false);
    await expect(pipeline('c', 'triple', '{ share: sometimes }')).rejects.toThrow(ManifestError);
    await expect(pipeline('c', 'triple', '{ share: sometimes }')).rejects.toThrow(/scale\.share/);
  });
});
