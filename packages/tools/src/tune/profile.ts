import type { Manifest, OnnxStage } from '@ensemble/core/manifest/types.js';
import type { Item } from '@ensemble/core/tensor/types.js';
import type { WeightStore } from '@ensemble/core/storage/types.js';
import { WorkerPoolTransport } from '@ensemble/core/transport/worker-pool.js';
import { shapeKey } from '@ensemble/core/batching/batcher.js';
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
  /**
   * Passes over all configurations, each taking its share of the limits above.
   * Other work on the machine comes and goes; spread over passes it hits
   * every configuration alike instead of whichever ran at that moment.
   */
  rounds?: number;
}

export const LIMITS: { normal: ProfileLimits; quick: ProfileLimits } = {
  normal: { minCalls: 6, minMs: 1200, maxMs: 4500, maxBatchMs: 2000, rounds: 3 },
  quick: { minCalls: 2, minMs: 300, maxMs: 1500, maxBatchMs: 1000, rounds: 1 },
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
    const k = shapeKey(it, o.stage.batch.padAxis, o.stage.perRequest);
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
  const rounds = Math.max(1, o.limits.rounds ?? 1);
  const share: ProfileLimits = {
    ...o.limits,
    minCalls: Math.max(1, Math.ceil(o.limits.minCalls / rounds)), minMs: o.limits.minMs / rounds, maxMs: o.limits.maxMs / rounds,
  };
  // One pool per split, all loaded at once (an idle worker costs memory, not CPU), so passes can alternate between them.
  const pools = o.splits.map((split) => {
    const stage: OnnxStage = { ...o.stage, scale: { ...o.stage.scale, ...split }, batch: { ...o.stage.batch, maxSize: Math.max(...sizes) } };
    return { split, stage, manifest: { ...o.manifest, stages: [stage], order: [stage.name] } as Manifest, transport: new WorkerPoolTransport(o.weights), stop: undefined as string | undefined };
  });
  const latencies = new Map<string, number[]>();
  const skipped: Skipped[] = [];
  try {
    for (const p of pools) await p.transport.load(p.manifest);
    for (let round = 0; round < rounds; round++) {
      for (const p of pools) {
        for (const b of sizes) {
          // Round 0 finds how far each split goes; later rounds repeat what it measured.
          if (round === 0 && p.stop) {
            skipped.push({ ...p.split, batch: b, reason: p.stop });
            continue;
          }
          if (round > 0 && !latencies.has(`${p.split.instances}x${p.split.threads}/${b}`)) continue;
          const source = groups.size > 1 && b === 1 ? o.items : main;
          const got = await measureCalls(p.transport, p.manifest.name, p.stage.name, source, b, p.split.instances, share);
          const key = `${p.split.instances}x${p.split.threads}/${b}`;
          latencies.set(key, [...(latencies.get(key) ?? []), ...got]);
          const sofar = summarize(latencies.get(key)!);
          if (round === rounds - 1) {
            log(`  ${p.stage.name} ${key.replace('/', ' batch ')}: ${((p.split.instances * b * 1000) / sofar.p50).toFixed(1)} items/s, batch p50 ${sofar.p50.toFixed(1)} ms p99 ${sofar.p99.toFixed(1)} ms (${sofar.count} calls)`);
          }
          if (round === 0 && sofar.p50 > o.limits.maxBatchMs) p.stop = `batch ${b} already took ${sofar.p50.toFixed(0)} ms per call`;
        }
      }
    }
  } finally {
    await Promise.all(pools.map((p) => p.transport.close()));
  }
  const measurements: Measurement[] = [];
  for (const p of pools) {
    for (const b of sizes) {
      const l = latencies.get(`${p.split.instances}x${p.split.threads}/${b}`);
      if (!l) continue;
      const st = summarize(l);
      // Lanes run back to back, so each delivers `batch` items per call time. The median call time, not the
      // wall clock, makes the rate: a burst of other work on the machine moves a few calls, not the median.
      measurements.push({ ...p.split, batch: b, batchP50Ms: st.p50, batchP99Ms: st.p99, itemsPerSec: (p.split.instances * b * 1000) / st.p50, calls: st.count });
    }
  }
  const r: StageProfileResult = { measurements, skipped };
  if (note) r.note = note;
  return r;
}

/** Call times of `instances` lanes sending back-to-back batches of `batch`, within the limits. */
async function measureCalls(
  transport: WorkerPoolTransport, pipeline: string, stage: string, source: Item[], batch: number, instances: number, limits: ProfileLimits,
): Promise<number[]> {
  // Warm every instance first: the first call after a start, or after another batch size, is not typical.
  await Promise.all(Array.from({ length: instances }, (_, i) => transport.invoke(pipeline, stage, batchOf(source, batch, i * batch))));
  const latencies: number[] = [];
  const t0 = performance.now();
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
      calls++;
      offset += batch;
    }
  }));
  return latencies;
}
