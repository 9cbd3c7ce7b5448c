import { describe, expect, it } from 'vitest';
import type { BatchEvent } from '../../src/observability/events.js';
import { ModelStatistics, splitStageModel, stageModelName } from '../../src/observability/statistics.js';

const batch = (over: Partial<BatchEvent> = {}): BatchEvent => ({
  pipeline: 'p', version: '1', stage: 's', size: 4, queueMs: 8, callMs: 5, computeMs: 3, coldStart: false, failedItems: 0, ...over,
});

describe('model statistics', () => {
  it('counts a stage as a composing model: items, batches, queue, compute and the call split around it', () => {
    const s = new ModelStatistics();
    s.batch(batch());
    s.batch(batch({ size: 2, queueMs: 2, callMs: 3, computeMs: 1 }));
    const st = s.stat('p.s', '1');
    expect(st).toMatchObject({ name: 'p.s', version: '1', inference_count: 6, execution_count: 2 });
    const i = st.inference_stats;
    expect(i.success).toEqual({ count: 6, ns: 4 * (2e6 + 5e6) + 2 * (1e6 + 3e6) });
    expect(i.queue).toEqual({ count: 6, ns: 10e6 });
    // Each item is charged its batch's compute, as a Triton backend reports every request of a batch.
    expect(i.compute_infer).toEqual({ count: 6, ns: 4 * 3e6 + 2 * 1e6 });
    expect(i.compute_input).toEqual({ count: 6, ns: 4 * 1e6 + 2 * 1e6 });
    expect(i.compute_output).toEqual(i.compute_input);
    expect(i.fail).toEqual({ count: 0, ns: 0 });
    expect(st.batch_stats).toEqual([
      { batch_size: 2, compute_input: { count: 1, ns: 1e6 }, compute_infer: { count: 1, ns: 1e6 }, compute_output: { count: 1, ns: 1e6 } },
      { batch_size: 4, compute_input: { count: 1, ns: 1e6 }, compute_infer: { count: 1, ns: 3e6 }, compute_output: { count: 1, ns: 1e6 } },
    ]);
    expect(st.last_inference).toBeGreaterThan(0);
  });

  it('counts failed items and failed batches as failures, and a failed batch as no execution', () => {
    const s = new ModelStatistics();
    s.batch(batch({ failedItems: 1 }));
    s.batch(batch({ size: 2, error: 'timeout', computeMs: 0 }));
    const st = s.stat('p.s', '1');
    expect(st.inference_count).toBe(3);
    expect(st.execution_count).toBe(1);
    expect(st.inference_stats.success.count).toBe(3);
    expect(st.inference_stats.fail.count).toBe(3);
    expect(st.batch_stats.map((b) => b.batch_size)).toEqual([4]);
  });

  it('counts a pipeline as Triton counts an ensemble: one execution per successful request of its rows', () => {
    const s = new ModelStatistics();
    s.requestEnded({ pipeline: 'p', version: '1', httpStatus: 200, durationMs: 4, items: 3, computeMs: 2.5 });
    s.requestEnded({ pipeline: 'p', version: '1', httpStatus: 400, durationMs: 0.5, error: 'invalid_input' });
    // Not yet any version's (a 503 while loading): not counted.
    s.requestEnded({ pipeline: 'p', version: '', httpStatus: 503, durationMs: 1 });
    const st = s.stat('p', '1');
    expect(st).toMatchObject({ inference_count: 3, execution_count: 1 });
    expect(st.inference_stats.success).toEqual({ count: 1, ns: 4e6 });
    expect(st.inference_stats.fail).toEqual({ count: 1, ns: 5e5 });
    expect(st.inference_stats.queue).toEqual({ count: 1, ns: 0 });
    expect(st.inference_stats.compute_infer).toEqual({ count: 1, ns: 2.5e6 });
    expect(st.batch_stats).toEqual([{ batch_size: 3, compute_input: { count: 1, ns: 0 }, compute_infer: { count: 1, ns: 2.5e6 }, compute_output: { count: 1, ns: 0 } }]);
  });

  it("charges a pipeline's request its stages' transfer as input and output, half each, as Triton's ensemble sums its steps'", () => {
    const s = new ModelStatistics();
    const stage = (transferMs: number) => ({ stage: 's', batches: 1, batchSizes: [1], items: 1, queueWaitMs: 0, computeMs: 1, coldStart: false, transferMs });
    const record = { id: 'r', pipeline: 'p', version: '1', status: 'succeeded' as const, httpStatus: 200, startedAt: '', durationMs: 5, stages: [stage(1.5), stage(0.5)] };
    s.requestEnded({ pipeline: 'p', version: '1', httpStatus: 200, durationMs: 5, items: 1, computeMs: 2, record });
    const st = s.stat('p', '1');
    expect(st.inference_stats.compute_input).toEqual({ count: 1, ns: 1e6 });
    expect(st.inference_stats.compute_output).toEqual({ count: 1, ns: 1e6 });
    expect(st.inference_stats.compute_infer).toEqual({ count: 1, ns: 2e6 });
  });

  it('counts a request of zero rows as a success with no inference and no execution', () => {
    const s = new ModelStatistics();
    s.requestEnded({ pipeline: 'p', version: '1', httpStatus: 200, durationMs: 1, items: 0, computeMs: 0 });
    const st = s.stat('p', '1');
    expect(st).toMatchObject({ inference_count: 0, execution_count: 0, batch_stats: [] });
    expect(st.inference_stats.success).toEqual({ count: 1, ns: 1e6 });
  });

  it('renders every duration as whole nanoseconds, and zeros for a model that has not run', () => {
    const s = new ModelStatistics();
    s.batch(batch({ size: 3, queueMs: 1, callMs: 0.0013, computeMs: 0.0007 }));
    const st = s.stat('p.s', '1');
    for (const d of Object.values(st.inference_stats)) expect(Number.isInteger(d.ns)).toBe(true);
    expect(s.stat('q', '2')).toEqual({
      name: 'q', version: '2', last_inference: 0, inference_count: 0, execution_count: 0,
      inference_stats: Object.fromEntries(['success', 'fail', 'queue', 'compute_input', 'compute_infer', 'compute_output', 'cache_hit', 'cache_miss'].map((k) => [k, { count: 0, ns: 0 }])),
      response_stats: {}, batch_stats: [], memory_usage: [],
    });
  });

  it('names stage models {pipeline}.{stage} and splits them back', () => {
    expect(stageModelName('ocr', 'detect-pre')).toBe('ocr.detect-pre');
    expect(splitStageModel('ocr.detect-pre')).toEqual({ pipeline: 'ocr', stage: 'detect-pre' });
    expect(splitStageModel('ocr')).toBeUndefined();
  });
});
