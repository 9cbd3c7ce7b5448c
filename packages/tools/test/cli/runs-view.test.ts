import { describe, expect, it } from 'vitest';
import type { RunRecord, StageRunRecord } from '@ensemble/core/storage/types.js';
import { runLines, summarize, summaryLines } from '../../src/cli/runs-view.js';

function stage(name: string, computeMs: number, queueWaitMs: number, cpuMs: number): StageRunRecord {
  return { stage: name, batches: 1, batchSizes: [1], items: 1, queueWaitMs, computeMs, coldStart: false, transferMs: 1, bytesIn: 4_000_000, bytesOut: 2_000_000, peakRssBytes: 150_000_000, cpuMs };
}

function run(i: number, a: number, b: number, costUsd?: number): RunRecord {
  const cpuMs = a + b;
  return {
    id: `r${i}`, pipeline: 'p', version: '1', status: 'succeeded', httpStatus: 200, startedAt: `2026-12-01T00:00:0${i}.000Z`, durationMs: a + b + 2,
    stages: [stage('detect', a, 1, a), stage('rec', b, 3, b)],
    // 10 W per core: 1 ms CPU = 0.01 J.
    profile: { cpuMs, energyJ: cpuMs * 0.01, carbonG: cpuMs * 0.01 / 3.6e6 * 360, assumptions: 't', ...(costUsd === undefined ? {} : { costUsd }) },
  };
}

describe('ensemble runs views', () => {
  // detect computes 10, 20, 30, 40 ms; rec 10 ms each: detect is 100 of 140 ms of compute.
  const runs = [run(1, 10, 10, 1e-6), run(2, 20, 10, 1e-6), run(3, 30, 10, 2e-6), run(4, 40, 10, 2e-6)];

  it('--summary: per-stage percentiles, share, energy per 1,000 requests', () => {
    const s = summarize(runs);
    const detect = s.stages.find((x) => x.stage === 'detect')!;
    expect(detect.computeP50).toBe(20);
    expect(detect.computeP99).toBe(40);
    expect(detect.queueP99).toBe(1);
    expect(detect.share).toBeCloseTo(100 / 140, 9);
    // 100 ms of CPU over 4 runs at 0.01 J/ms = 0.25 J a run, 250 J per 1,000.
    expect(detect.energyJPer1000).toBeCloseTo(250, 6);
    expect(s.per1000.energyJ).toBeCloseTo(350, 6);
    expect(s.per1000.costUsd).toBeCloseTo(0.0015, 12);
    const text = summaryLines('p', s).join('\n');
    expect(text).toContain('p: last 4 runs');
    expect(text).toMatch(/detect\s+4\s+20\.0\s+40\.0\s+1\.0\s+1\.0\s+71\.4%\s+250/);
    expect(text).toContain('per 1,000 requests: energy 350 J');
    expect(text).toContain('cost $0.00150');
  });

  it('a run line shows each stage with transfer, bytes, memory and CPU, and the run with energy and cost', () => {
    const [head, first] = runLines(runs);
    expect(head).toContain('energy J');
    expect(first).toContain('detect[1] compute 10.0 transfer 1.0 in 4.0MB out 2.0MB rss 150.0MB cpu 10.0');
    expect(first.split('\t')[5]).toBe('0.200');
    expect(first.split('\t')[6]).toBe('0.00000100');
  });
  it('shows each Lambda stage\'s Invokes: bytes each way, S3 spills, round trip against the handler', () => {
    const r = run(5, 10, 10);
    r.stages[0].hops = { invokes: 1, requestBytes: 120_000, responseBytes: 4_500_000, spillUpBytes: 0, spillDownBytes: 0, spillUpMs: 0, spillDownMs: 0, roundTripMs: 80, functionMs: 60 };
    r.stages[1].hops = { invokes: 2, requestBytes: 400, responseBytes: 900, spillUpBytes: 11_000_000, spillDownBytes: 0, spillUpMs: 40, spillDownMs: 0, roundTripMs: 30, functionMs: 20 };
    const [, line] = runLines([r]);
    expect(line).toContain('invoke x1 req 120.0KB resp 4.5MB no S3 round trip 80.0 handler 60.0');
    expect(line).toContain('invoke x2 req 0.4KB resp 0.9KB S3 up 11.0MB down 0.0KB 40.0ms round trip 30.0 handler 20.0');
  });
});
