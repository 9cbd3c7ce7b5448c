import { describe, expect, it } from 'vitest';
import { EMF_LIMITS, EmfBuffer, GatewayEmf, StageEmf } from '../../src/observability/emf.js';
import { emfDocument, emfViolations } from './emf-spec.js';

describe('Embedded Metric Format lines', () => {
  it("a gateway invocation is one line per pipeline, with Triton's counts under CloudWatch names and units", () => {
    const lines: string[] = [];
    const emf = new GatewayEmf({ write: (l) => lines.push(l), namespace: 'Test' });
    emf.batch({ pipeline: 'demo', version: '1', stage: 'a', size: 2, queueMs: 3, callMs: 2, computeMs: 1, coldStart: true, failedItems: 0 });
    emf.requestEnded({ pipeline: 'demo', version: '1', httpStatus: 200, durationMs: 12.5, items: 2 });
    expect(lines).toEqual([]);
    emf.invocationEnded();
    expect(lines).toHaveLength(1);
    expect(emfViolations(lines[0])).toEqual([]);
    const { directive, members } = emfDocument(lines[0]);
    expect(directive.Namespace).toBe('Test');
    expect(directive.Dimensions).toEqual([['model']]);
    expect(members).toMatchObject({ model: 'demo', RequestSuccess: 1, RequestFailure: 0, InferenceCount: 2, RequestDuration: 12.5, QueueDuration: 3, StageColdStarts: 1 });
    expect(directive.Metrics).toContainEqual({ Name: 'RequestDuration', Unit: 'Milliseconds' });
    expect(directive.Metrics).toContainEqual({ Name: 'RequestSuccess', Unit: 'Count' });

    emf.requestEnded({ pipeline: 'demo', version: '1', httpStatus: 429, error: 'overloaded', durationMs: 1 });
    emf.invocationEnded();
    expect(emfDocument(lines[1]).members).toMatchObject({ RequestSuccess: 0, RequestFailure: 1, RequestFailureRejected: 1 });
  });

  it('aggregates over N invocations: counts summed, durations kept as values', () => {
    const lines: string[] = [];
    const emf = new StageEmf({ write: (l) => lines.push(l), flushEvery: 3 });
    for (const items of [1, 4, 2]) emf.invocation({ pipeline: 'p', stage: 's', items, failedItems: 0, computeMs: items, coldStart: false });
    expect(lines).toHaveLength(1);
    expect(emfViolations(lines[0])).toEqual([]);
    const { directive, members } = emfDocument(lines[0]);
    expect(directive.Namespace).toBe('Ensemble');
    expect(directive.Dimensions).toEqual([['model', 'stage']]);
    expect(members).toMatchObject({ model: 'p', stage: 's', ExecCount: 3, InferenceCount: 7, BatchSize: [1, 4, 2], ComputeInferDuration: [1, 4, 2] });
  });

  it('keeps the limits: a metric never holds more than 100 values, a line more than 100 metrics; NaN is left out', () => {
    const lines: string[] = [];
    const buf = new EmfBuffer({ write: (l) => lines.push(l) });
    for (let i = 0; i < 250; i++) buf.observe({ model: 'p' }, 'Latency', 'Milliseconds', i);
    buf.observe({ model: 'p' }, 'Latency', 'Milliseconds', NaN);
    buf.flush();
    expect(lines.map((l) => (emfDocument(l).members.Latency as number[]).length)).toEqual([100, 100, 50]);
    lines.length = 0;
    for (let i = 0; i < 150; i++) buf.count({ model: 'p' }, `M${i}`, i);
    buf.flush();
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => emfDocument(l).directive.Metrics.length)).toEqual([EMF_LIMITS.metricsPerLine, 50]);
    for (const l of lines) expect(emfViolations(l)).toEqual([]);
  });

  it('the spec check refuses what CloudWatch would drop', () => {
    const line = (members: Record<string, unknown>, dims: string[][] = [['model']], unit = 'Count') => JSON.stringify({
      _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'N', Dimensions: dims, Metrics: [{ Name: 'M', Unit: unit }] }] }, ...members,
    });
    expect(emfViolations(line({ model: 'p', M: 1 }))).toEqual([]);
    expect(emfViolations(line({ M: 1 }))).toEqual(["dimension 'model' has no string value on the root"]);
    expect(emfViolations(line({ model: 'p', M: Array.from({ length: 101 }, () => 1) }))).toEqual(["metric 'M' has 101 values (1 to 100)"]);
    expect(emfViolations(line({ model: 'p', M: 1 }, [['model']], 'Millis'))).toEqual(["metric 'M': unit 'Millis' is not a CloudWatch unit"]);
    expect(emfViolations(line({ model: 'p', M: '1' }))).toEqual(["metric 'M' is not a number or an array of numbers"]);
    const wide = Array.from({ length: 31 }, (_, i) => `d${i}`);
    expect(emfViolations(line({ M: 1, ...Object.fromEntries(wide.map((d) => [d, 'v'])) }, [wide]))[0]).toMatch(/more than 30 dimensions/);
  });
});
