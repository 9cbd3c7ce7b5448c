import { describe, expect, it } from 'vitest';
import { estimateP99, propose, proposeMaxDelay, stagePaths } from '../../src/tune/propose.js';
import type { Measurement, StageProfile } from '../../src/tune/types.js';

/** A measurement where a batch of b costs fixed + perItem * b ms (p99 = p50 * jitter), on `instances` parallel instances. */
function m(batch: number, fixed: number, perItem: number, instances = 1, threads = 1, jitter = 1.2): Measurement {
  const p50 = fixed + perItem * batch;
  return { instances, threads, batch, batchP50Ms: p50, batchP99Ms: p50 * jitter, itemsPerSec: (instances * batch * 1000) / p50, calls: 10 };
}

function stage(name: string, measurements: Measurement[], dependsOn: string[] = [], itemsPerRequest = 1): StageProfile {
  return { stage: name, dependsOn, itemsPerRequest, measurements, skipped: [], current: { instances: 1, threads: 1, maxSize: 1, maxDelayMs: 0 } };
}

const sweep = (fixed: number, perItem: number, instances = 1) => [1, 2, 4, 8, 16, 32, 64].map((b) => m(b, fixed, perItem, instances));

describe('propose', () => {
  it('takes the largest batch whose estimated p99 fits a loose budget', () => {
    // fixed 2 ms + 1 ms per item: batch 64 = 66 ms, est p99 = 66 + 79.2 = 145.2 ms.
    const p = propose({ budgetMs: 200, stages: [stage('s', sweep(2, 1))] });
    expect(p.stages[0]).toMatchObject({ stage: 's', maxSize: 64, instances: 1, threads: 1, withinBudget: true });
    expect(p.stages[0].estimatedP99Ms).toBeCloseTo(66 + 66 * 1.2 + p.stages[0].maxDelayMs);
    expect(p.capacity.bottleneck).toBe('s');
  });

  it('respects a tight budget with a smaller batch', () => {
    // batch 16 = 18 ms -> est 39.6 + delay; batch 32 = 34 ms -> est 74.8: over a 50 ms budget.
    const p = propose({ budgetMs: 50, stages: [stage('s', sweep(2, 1))] });
    expect(p.stages[0].maxSize).toBe(16);
    expect(p.stages[0].estimatedP99Ms).toBeLessThanOrEqual(50);
    expect(p.stages[0].withinBudget).toBe(true);
  });

  it('prefers more instances when they give more throughput within budget', () => {
    const p = propose({ budgetMs: 100, stages: [stage('s', [...sweep(2, 1, 1), ...sweep(2.5, 1.1, 2)])] });
    expect(p.stages[0].instances).toBe(2);
  });

  it('falls back to the lowest latency, flagged, when nothing fits', () => {
    const p = propose({ budgetMs: 5, stages: [stage('s', sweep(10, 5))] });
    expect(p.stages[0]).toMatchObject({ maxSize: 1, withinBudget: false });
    expect(p.notes.join(' ')).toMatch(/cannot be met/);
  });

  it('gives a stage that is not the bottleneck its lowest-latency configuration that keeps up', () => {
    // a: cheap, 1 item per request; b: after a fan-out of 4 items per request, expensive.
    const a = stage('a', sweep(1, 0.5));
    const b = stage('b', sweep(2, 4), ['a'], 4);
    const p = propose({ budgetMs: 400, stages: [a, b] });
    const pa = p.stages.find((s) => s.stage === 'a')!;
    const pb = p.stages.find((s) => s.stage === 'b')!;
    expect(p.capacity.bottleneck).toBe('b');
    // b's capacity in requests/s is its items/s over 4.
    expect(pb.requestsPerSec).toBeCloseTo(pb.itemsPerSec / 4);
    expect(pa.requestsPerSec).toBeGreaterThanOrEqual(pb.requestsPerSec);
    // The smallest batch of a that reaches b's requests/s: a batch of 1 does 667 items/s.
    const needed = a.measurements.filter((x) => x.itemsPerSec >= pb.requestsPerSec).sort((x, y) => x.batchP50Ms - y.batchP50Ms)[0];
    expect(pa.maxSize).toBe(needed.batch);
    expect(pa.pathP99Ms).toBeCloseTo(pa.estimatedP99Ms + pb.estimatedP99Ms);
    expect(pa.pathP99Ms).toBeLessThanOrEqual(400);
  });

  it('checks the budget along every path, not per stage', () => {
    // Two stages in a chain, each alone could take 60 ms; together they must share 100 ms.
    const p = propose({ budgetMs: 100, stages: [stage('a', sweep(2, 1)), stage('b', sweep(2, 1), ['a'])] });
    const sum = p.stages.reduce((n, s) => n + s.estimatedP99Ms, 0);
    expect(sum).toBeLessThanOrEqual(100);
    expect(p.stages.every((s) => s.withinBudget)).toBe(true);
    // Parallel branches each get the whole budget.
    const q = propose({ budgetMs: 100, stages: [stage('a', sweep(2, 1)), stage('b', sweep(2, 1))] });
    expect(Math.max(...q.stages.map((s) => s.estimatedP99Ms))).toBeGreaterThan(sum / 2);
  });

  it('sets function stages to no batching wait', () => {
    const p = propose({ budgetMs: 100, stages: [stage('s', sweep(2, 1))], functionStages: [{ stage: 'pre', maxDelayMs: 2 }] });
    expect(p.functionStages).toEqual([expect.objectContaining({ stage: 'pre', maxDelayMs: 0, currentMaxDelayMs: 2 })]);
  });

  it('notes when the proposed sessions want more threads than the machine has', () => {
    const p = propose({ budgetMs: 1000, cores: 2, stages: [stage('a', sweep(2, 1, 2)), stage('b', sweep(2, 1, 2), ['a'])] });
    expect(p.notes.join(' ')).toMatch(/on 2 cores/);
  });

  it('rejects a non-positive budget', () => {
    expect(() => propose({ budgetMs: 0, stages: [] })).toThrow(RangeError);
  });
});

describe('proposeMaxDelay', () => {
  it('waits at most the fixed cost of a call, and not at all when batching costs more per item than it saves', () => {
    // Fixed cost 4 ms; a batch of 64 takes 68 ms.
    expect(proposeMaxDelay(m(1, 4, 1), m(64, 4, 1))).toBe(4);
    // A batch of 8 takes 12 ms: a tenth of that caps the wait.
    expect(proposeMaxDelay(m(1, 4, 1), m(8, 4, 1))).toBe(1);
    expect(proposeMaxDelay(m(1, 4, 1), m(1, 4, 1))).toBe(0);
    // Padding: a batch of 4 costs 5x a single item.
    const one = m(1, 0, 10);
    const padded: Measurement = { ...m(4, 0, 10), batchP50Ms: 50 };
    expect(proposeMaxDelay(one, padded)).toBe(0);
  });

  it('estimates p99 as delay + one batch in the way + its own batch', () => {
    expect(estimateP99({ batchP50Ms: 10, batchP99Ms: 15 }, 2)).toBe(27);
  });
});

describe('stagePaths', () => {
  it('lists every source-to-sink path of a diamond', () => {
    const paths = stagePaths([stage('a', []), stage('b', [], ['a']), stage('c', [], ['a']), stage('d', [], ['b', 'c'])]);
    expect(paths.map((p) => p.join('>')).sort()).toEqual(['a>b>d', 'a>c>d']);
  });
});
