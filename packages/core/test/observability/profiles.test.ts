import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Executor } from '../../src/executor/executor.js';
import { WorkerPoolTransport } from '../../src/transport/worker-pool.js';
import { InProcessTransport } from '../../src/transport/in-process.js';
import { S3WeightStore } from '../../src/storage/s3-weights.js';
import { StageStats } from '../../src/executor/stage-stats.js';
import { fitRecord, RECORD_MAX_BYTES } from '../../src/storage/record-limits.js';
import type { RunRecord, StageRunRecord } from '../../src/storage/types.js';
import type { BatchResult } from '../../src/runtime/types.js';
import { scaleModel } from '../fixtures/models.js';
import { startHarness, weightsYaml, type Harness, type Loaded } from '../executor/harness.js';

const MODEL = scaleModel(2, ['batch', 'n']);
/** 2.5 M FP32 values: a 10 MB tensor. */
const N = 2_500_000;

let h: Harness;
let loaded: Loaded;

beforeAll(async () => {
  h = await startHarness();
  loaded = await h.load(`
name: big
inputs: [{ name: x, datatype: FP32, shape: [-1, ${N}] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, ${N}] }]
stages:
  - name: double
    kind: onnx
    weights: ${weightsYaml('t/double.onnx', 'double.onnx', MODEL)}
    inputs: { x: x }
    outputs: { y: y }
`, { 'double.onnx': MODEL });
});

afterAll(async () => { await h?.close(); });

function bigInput(): Record<string, { datatype: 'FP32'; shape: number[]; data: Float32Array }> {
  return { x: { datatype: 'FP32', shape: [1, N], data: new Float32Array(N).fill(1.5) } };
}

describe('run profiles', () => {
  it('a 10 MB tensor through a worker-pool stage: its bytes, transfer, CPU, peak RSS and cold start split', async () => {
    // A cache of its own: the transport downloads and hashes the weights itself, so the split has a fetch.
    const weights = new S3WeightStore({ s3: h.local.s3, bucket: h.local.settings.bucket, cacheDir: join(loaded.dir, 'pool-cache') });
    const transport = new WorkerPoolTransport(weights);
    const executor = await Executor.create(loaded.manifest, transport);
    try {
      const first = await executor.run(bigInput());
      const s = first.stages.find((r) => r.stage === 'double')!;
      expect(s.bytesIn).toBe(N * 4);
      expect(s.bytesOut).toBe(N * 4);
      // 10 MB each way over the IPC channel is never free.
      expect(s.transferMs).toBeGreaterThan(0);
      expect(s.transfer?.ipcMs).toBeGreaterThan(0);
      expect(s.transfer?.serializeMs).toBeGreaterThanOrEqual(0);
      expect(s.cpuMs).toBeGreaterThan(0);
      // The worker held the 10 MB input and the 10 MB output; a worker is far below 4 GB.
      expect(s.peakRssBytes).toBeGreaterThan(20_000_000);
      expect(s.peakRssBytes).toBeLessThan(4 * 1024 ** 3);
      expect(s.coldStart).toBe(true);
      const split = s.coldStartSplit!;
      expect(split.fetchMs).toBeGreaterThan(0);
      expect(split.sessionMs).toBeGreaterThan(0);
      expect(split.fetchMs + split.hashMs + split.sessionMs).toBeLessThanOrEqual(s.initMs!);

      const second = await executor.run(bigInput());
      const w = second.stages.find((r) => r.stage === 'double')!;
      expect(w.coldStart).toBe(false);
      expect(w.coldStartSplit).toBeUndefined();
      expect(w.bytesIn).toBe(N * 4);
    } finally {
      await executor.close();
      await transport.close();
    }
  });

  it('in-process stages report the gateway process: CPU time and its peak RSS', async () => {
    const result = await loaded.executor.run(bigInput());
    const s = result.stages[0];
    expect(s.bytesIn).toBe(N * 4);
    expect(s.bytesOut).toBe(N * 4);
    expect(s.cpuMs).toBeGreaterThanOrEqual(0);
    expect(s.peakRssBytes).toBeGreaterThanOrEqual(process.memoryUsage().rss * 0.5);
    expect(s.transferMs).toBeGreaterThanOrEqual(0);
  });

  it("a function stage in the gateway reports its module's CPU time on the event loop, and the gateway's peak RSS", async () => {
    const spin = await h.load(`
name: spin
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - { name: busy, kind: function, module: stages/busy.ts, inputs: [x], outputs: [y] }
`, {
      // 60 ms of CPU on purpose (counted in CPU time, not on the clock, so a busy machine cannot shorten it), then a
      // wait of the kind a module hands to another thread: the wait costs this thread nothing.
      'stages/busy.ts': `export default { async process(item: any) {
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const end = cpu() + 60; let n = 0; while (cpu() < end) n++;
  await new Promise((r) => setTimeout(r, 200));
  return { y: item.x };
} };\n`,
    });
    const s = (await spin.executor.run({ x: { datatype: 'FP32', shape: [1, 1], data: Float32Array.of(1) } })).stages[0];
    expect(s.stage).toBe('busy');
    // Linux has the thread's count (/proc/thread-self/schedstat, or Node's threadCpuUsage): most of the 60 ms (the
    // process's count also has its other threads').
    expect(s.cpuMs).toBeGreaterThan(30);
    expect(s.peakRssBytes).toBeGreaterThanOrEqual(process.memoryUsage().rss * 0.5);
  });

  it('the in-process cold start splits into fetch, hash and session, within initMs', async () => {
    const weights = new S3WeightStore({ s3: h.local.s3, bucket: h.local.settings.bucket, cacheDir: join(loaded.dir, 'inproc-cache') });
    const transport = new InProcessTransport(weights);
    const executor = await Executor.create(loaded.manifest, transport);
    try {
      const s = (await executor.run(bigInput())).stages[0];
      expect(s.coldStart).toBe(true);
      const split = s.coldStartSplit!;
      expect(split.fetchMs).toBeGreaterThan(0);
      expect(split.fetchMs + split.hashMs + split.sessionMs).toBeLessThanOrEqual(s.initMs!);
    } finally {
      await executor.close();
      await transport.close();
    }
  });
});

describe('StageStats', () => {
  const result = (over: Partial<BatchResult> = {}): BatchResult => ({ outcomes: [], computeMs: 10, coldStart: false, ...over });
  const run = (batchId: number, batchSize: number, r: BatchResult, callMs = 14) => ({
    outcome: { ok: true as const, items: [] }, batchId, batchSize, queueWaitMs: 1, computeMs: r.computeMs, coldStart: r.coldStart, callMs, result: r,
  });

  it("apportions a shared batch's CPU and Lambda billing by this request's share of its items, and counts its transfer once", () => {
    const stats = new StageStats('s');
    // One batch of 4 items, 2 of them this request's: 80 ms CPU, 250 ms billed at 2048 MB.
    const shared = result({ cpuMs: 80, peakRssBytes: 5e8, lambda: { billedMs: 250, memoryMb: 2048, arch: 'arm64' }, transfer: { serializeMs: 1, invokeMs: 2 } });
    stats.submitted(100); stats.submitted(100);
    stats.record(run(1, 4, shared));
    stats.record(run(1, 4, shared));
    stats.answered(40);
    const r = stats.toRecord();
    expect(r.cpuMs).toBe(40);
    expect(r.lambda).toEqual({ gbSeconds: 0.25, invocations: 0.5, arch: 'arm64', memoryMb: 2048 });
    expect(r.transferMs).toBe(3);
    expect(r.transfer).toEqual({ serializeMs: 1, invokeMs: 2 });
    expect(r.bytesIn).toBe(200);
    expect(r.bytesOut).toBe(40);
    expect(r.peakRssBytes).toBe(5e8);
  });

  it('without a split, transfer is call wall time less compute', () => {
    const stats = new StageStats('s');
    stats.submitted();
    stats.record(run(7, 1, result({ computeMs: 10 }), 14.5));
    expect(stats.toRecord().transferMs).toBe(4.5);
  });
});

describe('record limits', () => {
  it('a record with every profile field on 200 stages is still cut to fit', () => {
    const stage: StageRunRecord = {
      stage: 'x'.repeat(60), batches: 100, batchSizes: Array(100).fill(64), items: 6400, queueWaitMs: 1, computeMs: 2, coldStart: true, initMs: 3,
      transferMs: 1, transfer: { serializeMs: 1, ipcMs: 1, invokeMs: 1, spillUpMs: 1, spillDownMs: 1 }, bytesIn: 1e9, bytesOut: 1e9, peakRssBytes: 1e9,
      cpuMs: 4, coldStartSplit: { fetchMs: 1, hashMs: 1, sessionMs: 1 }, lambda: { gbSeconds: 1, invocations: 1, arch: 'x86_64', memoryMb: 2048 },
    };
    const rec: RunRecord = {
      id: 'r', pipeline: 'p', version: '1', status: 'succeeded', httpStatus: 200, startedAt: new Date().toISOString(), durationMs: 1,
      stages: Array(300).fill(stage), profile: { cpuMs: 1, energyJ: 1, carbonG: 1, costUsd: 1, assumptions: 'a' },
    };
    const fit = fitRecord(rec);
    expect(Buffer.byteLength(JSON.stringify(fit))).toBeLessThanOrEqual(RECORD_MAX_BYTES);
    expect(fit.profile).toEqual(rec.profile);
  });
});
