/**
 * The console's critical path (packages/console/static/waterfall.js) on run
 * records where some function stages run beside a model and have no line of
 * their own: the page's own module, run here on hand-made views and records.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript with JSDoc types, served as is to the browser
import { colocatedStages, criticalPath } from '../packages/console/static/waterfall.js';
// @ts-expect-error plain JavaScript with JSDoc types, served as is to the browser
import { stagePredecessors } from '../packages/console/static/graph.js';

type Stage = { name: string; inputs: Record<string, string>; outputs: Record<string, string>; runsWith?: { stage: string; after: boolean } };

function view(stages: Stage[]) {
  return {
    name: 'p', version: '1', ready: true, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1] }], levels: {},
    stages: stages.map((s) => ({ kind: 'function', fanout: false, batch: { maxSize: 1, maxDelayMs: 0, maxQueue: 1 }, scale: { instances: 1, threads: 1, memoryMb: 1 }, live: { queued: 0, inFlight: 0, ready: true }, ...s })),
  };
}
const line = (stage: string, startMs: number, endMs: number) => ({ stage, startMs, endMs, batches: 1, batchSizes: [1], items: 1, queueWaitMs: 0, computeMs: endMs - startMs, coldStart: false });
const path = (v: ReturnType<typeof view>, lines: ReturnType<typeof line>[]): string[] =>
  criticalPath({ stages: lines }, stagePredecessors(v), colocatedStages(v), v.stages.map((s) => s.name)).reverse();

describe('the critical path through stages that run beside a model', () => {
  it('ends with a stage run after the model, though only the model has a line', () => {
    const v = view([
      { name: 'pre', inputs: { x: 'x' }, outputs: { a: 'a' }, runsWith: { stage: 'model', after: false } },
      { name: 'model', inputs: { a: 'a' }, outputs: { b: 'b' } },
      { name: 'post', inputs: { b: 'b' }, outputs: { y: 'y' }, runsWith: { stage: 'model', after: true } },
    ]);
    expect(path(v, [line('model', 1, 9)])).toEqual(['pre', 'model', 'post']);
  });

  it('takes a gateway producer that ended after the model started over a stage run before the model', () => {
    // join reads what the model made and what slow made; slow ended (7) after the model started (1), before it ended (9).
    const v = view([
      { name: 'pre', inputs: { x: 'x' }, outputs: { a: 'a' }, runsWith: { stage: 'model', after: false } },
      { name: 'model', inputs: { a: 'a' }, outputs: { b: 'b' } },
      { name: 'slow', inputs: { x: 'x' }, outputs: { s: 's' } },
      { name: 'join', inputs: { b: 'b', s: 's' }, outputs: { y: 'y' } },
    ]);
    expect(path(v, [line('model', 1, 9), line('slow', 0, 7), line('join', 9, 10)])).toEqual(['pre', 'model', 'join']);
    // With the model short and slow long, the response waited on slow.
    expect(path(v, [line('model', 1, 3), line('slow', 0, 7), line('join', 7, 8)])).toEqual(['slow', 'join']);
  });
});
