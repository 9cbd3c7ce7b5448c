import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult, StageRuntime } from '../runtime/types.js';
import type { WeightStore } from '../storage/types.js';
import { isStageOf, stageKey, type StageTransport } from './types.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import { NotReadyError } from '../errors.js';
import { markUsage, threadCpuMicros, usageSince } from '../runtime/process-usage.js';

/**
 * ONNX stages run on sessions inside this process: `instances` sessions per
 * stage, each used by one batch at a time (the batcher never has more batches
 * in flight than instances).
 */
export class InProcessTransport implements StageTransport {
  readonly kind = 'in-process';
  private readonly pools = new Map<string, { free: StageRuntime[]; all: StageRuntime[]; oneThread: boolean }>();

  constructor(private readonly weights: WeightStore) {}

  async load(manifest: Manifest, address = manifest.name): Promise<void> {
    for (const stage of manifest.stages) {
      if (stage.kind !== 'onnx') continue;
      const loadStartedAt = performance.now();
      const modelPath = await this.weights.resolve(stage.weights.key, stage.weights.sha256);
      const weights = this.weights.timing?.(stage.weights.sha256);
      const all: StageRuntime[] = [];
      for (let i = 0; i < stage.scale.instances; i++) {
        // Only the first session paid for the weights; the others made a session each.
        all.push(await createOnnxRuntime(i === 0 ? { stage, modelPath, weights, loadStartedAt } : { stage, modelPath }));
      }
      this.pools.set(stageKey(address, stage.name), { free: [...all], all, oneThread: stage.scale.threads <= 1 });
    }
  }

  concurrency(stage: OnnxStage): number { return stage.scale.instances; }

  /**
   * No `signal` here: a session.run in this process cannot be interrupted
   * (ONNX Runtime has no cancel for it, and the session is not safe to reuse
   * or release mid-run). A batch past its deadline fails its items in the
   * batcher; its session stays taken until the run really ends.
   */
  async invoke(pipeline: string, stage: string, items: Item[]): Promise<BatchResult> {
    const pool = this.pools.get(stageKey(pipeline, stage));
    if (!pool) throw new NotReadyError(`stage '${stage}' of '${pipeline}' is not loaded`);
    const rt = pool.free.pop();
    if (!rt) throw new NotReadyError(`stage '${stage}' has no free session`);
    // One intra-op thread: the session runs on this thread, whose own CPU count is the batch's (and
    // whatever else the gateway's event loop did meanwhile). More: the pool's threads count too.
    const threadMark = pool.oneThread ? threadCpuMicros() : undefined;
    const mark = threadMark === undefined ? markUsage() : undefined;
    try {
      const result = await rt.run(items);
      // This process is the gateway: its CPU time over the batch includes whatever else it did meanwhile.
      // Its peak RSS is the gateway's too, read at most once a second: batches here are many and small.
      const usage = usageSince(mark, { peakRssWithinMs: 1_000 });
      const threadNow = threadMark === undefined ? undefined : threadCpuMicros();
      result.cpuMs = threadNow === undefined ? usage.cpuMs : (threadNow - threadMark!) / 1000;
      result.peakRssBytes = usage.peakRssBytes;
      return result;
    } finally {
      pool.free.push(rt);
    }
  }

  /** Release the sessions of the pipeline loaded at `pipeline`; none may be mid-run (a session cannot be released inside session.run). */
  async unload(pipeline: string): Promise<void> {
    for (const [key, pool] of [...this.pools]) {
      if (!isStageOf(key, pipeline)) continue;
      this.pools.delete(key);
      await Promise.all(pool.all.map((r) => r.close()));
    }
  }

  async close(): Promise<void> {
    for (const pool of this.pools.values()) await Promise.all(pool.all.map((r) => r.close()));
    this.pools.clear();
  }
}

