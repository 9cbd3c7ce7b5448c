import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { WeightStore } from '../storage/types.js';
import { WorkerPoolTransport } from '../transport/worker-pool.js';
import { shapeKey } from '../batching/batcher.js';
import { summarize } from '../bench/stats.js';
import type { Measurement, Skipped, Split } from './types.js';

export const DEFAULT_BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64];

/** Instance × thread splits that use the machine: 1×1, and every split using all `cores`. */
export function machineSplits(cores: number): Split[] {
  const out: Split[] = [{ instances: 1, threads: 1 }];
  for (let i = 1; i <= cores; i++) {
    if (cores % i === 0 && !(i === 1 && cores === 1)) out.push({ instances: i, threads: cores / i });
  }
  return out.filter((s, k) => out.findIndex((o) => o.instances === s.instances && o.threads === s.threads) === k);
}

export interface ProfileLimits {
  /** Calls per instance at least... */
  minCalls: number;
  /** ...and at least this long... */
  minMs: number;
  /** ...but never longer than this per configuration (a call in flight finishes). */
  maxMs: number;
  /** A batch whose p50 passes this is the last size tried for its split. */
  maxBatchMs: number;
}

export const LIMITS: { normal: ProfileLimits; quick: ProfileLimits } = {
  normal: { minCalls: 5, minMs: 1000, maxMs: 4000, maxBatchMs: 2000 },
  quick: { minCalls: 3, minMs: 300, maxMs: 1500, maxBatchMs: 1000 },
};

export interface StageProfileOptions {
  manifest: Manifest;
  stage: OnnxStage;
  weights: WeightStore;
  /** Items the stage received from sample requests (captureStageInputs). */
  items: Item[];
  splits: Split[];
  batchSizes: number[];
  limits: ProfileLimits;
  log?: (s: string) => void;
}

export interface StageProfileResult {
  measurements: Measurement[];
  skipped: Skipped[];
  note?: string;
}

/** `n` items for one batch: all of one shape group (they must be able to share a call), cycled. */
function batchOf(group: Item[], n: number, offset: number): Item[] {
  return Array.from({ length: n }, (_, i) => group[(offset + i) % group.length]);
}

/**
 * Profiles one ONNX stage alone, the way it is served: `instances` worker
 * processes (WorkerPoolTransport) with `threads` intra-op threads each, kept
 * busy with back-to-back batches of each size, on items the stage really
 * receives.
 */
export async function profileStage(o: StageProfileOptions): Promise<StageProfileResult> {
  const log = o.log ?? (() => undefined);
  const groups = new Map<string, Item[]>();
  for (const it of o.items) {
    const k = shapeKey(it, o.stage.batch.padAxis);
    groups.set(k, [...(groups.get(k) ?? []), it]);
  }
  const main = [...groups.values()].sort((a, b) => b.length - a.length)[0];
  let sizes = [...o.batchSizes].sort((a, b) => a - b);
  let note: string | undefined;
  if (groups.size > 1 && o.stage.batch.padAxis === undefined) {
    // Without a pad axis only equal shapes share a call; the samples say requests differ, so batches would not form.
    sizes = sizes.filter((b) => b === 1);
    note = `its ${o.items.length} sample items have ${groups.size} different shapes and the stage has no pad_axis, so batches of more than one would rarely form: batch 1 only`;
  }
  const measurements: Measurement[] = [];
  const skipped: Skipped[] = [];
  for (const split of o.splits) {
    const stage: OnnxStage = { ...o.stage, scale: { ...o.stage.scale, ...split }, batch: { ...o.stage.batch, maxSize: Math.max(...sizes) } };
    const manifest: Manifest = { ...o.manifest, stages: [stage] };
    const transport = new WorkerPoolTransport(o.weights);
    try {
      await transport.load(manifest);
      let stop: string | undefined;
      for (const b of sizes) {
        if (stop) { skipped.push({ ...split, batch: b, reason: stop }); continue; }
        const source = groups.size > 1 && b === 1 ? o.items : main;
        const m = await measureConfig(transport, manifest.name, stage.name, source, b, split.instances, o.limits);
        measurements.push({ ...split, ...m });
        log(`  ${stage.name} ${split.instances}x${split.threads} batch ${String(b).padStart(2)}: ${m.itemsPerSec.toFixed(1)} items/s, batch p50 ${m.batchP50Ms.toFixed(1)} ms p99 ${m.batchP99Ms.toFixed(1)} ms (${m.calls} calls)`);
        if (m.batchP50Ms > o.limits.maxBatchMs) stop = `batch ${b} already took ${m.batchP50Ms.toFixed(0)} ms per call`;
      }
    } finally {
      await transport.close();
    }
  }
  const r: StageProfileResult = { measurements, skipped };
  if (note) r.note = note;
  return r;
}

async function measureConfig(
  transport: WorkerPoolTransport, pipeline: string, stage: string, source: Item[], batch: number, instances: number, limits: ProfileLimits,
): Promise<Omit<Measurement, 'instances' | 'threads'>> {
  // Warm every instance first: the first call after a start is a cold start.
  await Promise.all(Array.from({ length: instances }, (_, i) => transport.invoke(pipeline, stage, batchOf(source, batch, i * batch))));
  const latencies: number[] = [];
  let items = 0;
  const t0 = performance.now();
  let end = t0;
  await Promise.all(Array.from({ length: instances }, async (_, lane) => {
    let calls = 0;
    let offset = lane * batch;
    for (;;) {
      const elapsed = performance.now() - t0;
      if (elapsed >= limits.maxMs || (calls >= limits.minCalls && elapsed >= limits.minMs)) break;
      const started = performance.now();
      const r = await transport.invoke(pipeline, stage, batchOf(source, batch, offset));
      const done = performance.now();
      const failed = r.outcomes.find((x) => !x.ok);
      if (failed && !failed.ok) throw new Error(`stage '${stage}' failed while profiling: ${failed.error}`);
      latencies.push(done - started);
      items += batch;
      calls++;
      offset += batch;
      end = Math.max(end, done);
    }
  }));
  const s = summarize(latencies);
  return { batch, batchP50Ms: s.p50, batchP99Ms: s.p99, itemsPerSec: (items * 1000) / (end - t0), calls: latencies.length };
}
