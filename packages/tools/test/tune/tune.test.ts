import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSplitPipeline } from '../../src/bench/split-model.js';
import { loadManifest } from '../../../core/src/manifest/load.js';
import { machineSplits } from '../../src/tune/profile.js';
import { tune } from '../../src/tune/run.js';

describe('machineSplits', () => {
  it('tries 1 x 1 and every way to use all cores', () => {
    expect(machineSplits(1)).toEqual([{ instances: 1, threads: 1 }]);
    expect(machineSplits(2)).toEqual([{ instances: 1, threads: 1 }, { instances: 1, threads: 2 }, { instances: 2, threads: 1 }]);
    expect(machineSplits(4).map((s) => `${s.instances}x${s.threads}`)).toEqual(['1x1', '1x4', '2x2', '4x1']);
  });
});

describe('tune (real stages in worker processes)', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });

  it('profiles each ONNX stage, proposes settings and writes them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ensemble-tune-run-'));
    dirs.push(dir);
    const file = await writeSplitPipeline(dir, { size: 16, iterations: [2, 3], batch: 1 });
    const r = await tune({
      manifestFile: file, budgetMs: 10_000, batchSizes: [1, 4], splits: [{ instances: 1, threads: 1 }, { instances: 2, threads: 1 }],
      limits: { minCalls: 2, minMs: 0, maxMs: 200, maxBatchMs: 0.001, rounds: 2 }, write: true,
    });
    expect(r.profiles.map((p) => p.stage)).toEqual(['split_1', 'split_2']);
    expect(r.profiles[1].dependsOn).toEqual(['split_1']);
    for (const p of r.profiles) {
      expect(p.itemsPerRequest).toBe(1);
      // Every batch of 1 takes longer than maxBatchMs, so each split stops there; later rounds repeat batch 1.
      expect(p.measurements.map((x) => `${x.instances}x${x.threads}/${x.batch}`)).toEqual(['1x1/1', '2x1/1']);
      expect(p.skipped.map((x) => `${x.instances}x${x.threads}/${x.batch}`)).toEqual(['1x1/4', '2x1/4']);
      expect(p.skipped[0].reason).toMatch(/batch 1 already took/);
      for (const x of p.measurements) {
        // Two rounds of at least one call per instance each.
        expect(x.calls).toBeGreaterThanOrEqual(2 * x.instances);
        expect(x.itemsPerSec).toBeGreaterThan(0);
        expect(x.batchP99Ms).toBeGreaterThanOrEqual(x.batchP50Ms);
      }
    }
    expect(r.proposal.stages.every((s) => s.withinBudget)).toBe(true);
    expect(r.written).toBe(true);
    const m = await loadManifest(file);
    for (const s of r.proposal.stages) {
      const st = m.stages.find((x) => x.name === s.stage)!;
      expect(st.batch.maxSize).toBe(s.maxSize);
      expect(st.batch.maxDelayMs).toBe(s.maxDelayMs);
      expect(st.scale.instances).toBe(s.instances);
    }
  });
});
