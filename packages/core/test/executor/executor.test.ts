import { fileURLToPath } from 'node:url';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Executor, RunFailure, type RunResult } from '../../src/executor/executor.js';
import { FUNCTION_STAGE_CONCURRENCY } from '../../src/runtime/function.js';
import { SyncActivity } from '../../src/executor/activity.js';
import { InProcessTransport } from '../../src/transport/in-process.js';
import { loadManifest } from '../../src/manifest/load.js';
import { pushPipeline } from '@ensemble/tools/pipelines/push.js';
import type { StageTransport } from '../../src/transport/types.js';
import type { Manifest } from '../../src/manifest/types.js';
import type { BatchResult } from '../../src/runtime/types.js';
import type { Item } from '../../src/tensor/types.js';
import type { Tensor } from '../../src/tensor/types.js';
import { addModel, scaleModel } from '../fixtures/models.js';
import {
  probeEvents, probeModule, resetProbe, sleep, startHarness, until, weightsYaml, type Harness, type Loaded,
} from './harness.js';

const ERRORS_MODULE = fileURLToPath(new URL('../../src/errors.ts', import.meta.url));

function f32(rows: number[][]): Tensor {
  return { datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()) };
}

function rowsOf(t: Tensor): number[][] {
  const [n, ...rest] = t.shape;
  const per = rest.reduce((a, b) => a * b, 1);
  const flat = Array.from(t.data as Float32Array);
  return Array.from({ length: n }, (_, i) => flat.slice(i * per, (i + 1) * per));
}

/** The RunFailure a run rejects with (fails the test if it resolves or throws anything else). */
async function failureOf(p: Promise<RunResult>): Promise<RunFailure> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e, 'the run should have failed').toBeInstanceOf(RunFailure);
  return e as RunFailure;
}

const started = (stage: string) => probeEvents().some((e) => e.stage === stage && e.what === 'start');
const ended = (stage: string) => probeEvents().some((e) => e.stage === stage && e.what === 'end');

let h: Harness;
beforeAll(async () => { h = await startHarness(); });
afterAll(async () => { await h?.close(); });
beforeEach(() => resetProbe());

describe('Executor: branches', () => {
  let p: Loaded;
  const add = addModel();
  beforeAll(async () => {
    p = await h.load(`
name: parallel
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: slow_a
    kind: function
    module: stages/slow_a.ts
    inputs: [x]
    outputs: [{ name: a, datatype: FP32, shape: [-1, 2] }]
  - name: slow_b
    kind: function
    module: stages/slow_b.ts
    inputs: [x]
    outputs: [{ name: b, datatype: FP32, shape: [-1, 2] }]
  - name: join
    kind: onnx
    weights: ${weightsYaml('parallel/add.onnx', 'add.onnx', add)}
    inputs: { a: a, b: b }
    outputs: { sum: y }
`, {
      'add.onnx': add,
      'stages/slow_a.ts': probeModule('await sleep(300); return { a: f32(Array.from(item.x.data, (v: number) => v * 2)) };'),
      'stages/slow_b.ts': probeModule('await sleep(300); return { b: f32(Array.from(item.x.data, (v: number) => v + 1)) };'),
    });
  });

  it('runs two independent slow branches at the same time and joins them in an ONNX stage', async () => {
    const result = await p.executor.run({ x: f32([[1, 2], [3, 4]]) });
    expect(result.outputs.y.shape).toEqual([2, 2]);
    expect(rowsOf(result.outputs.y)).toEqual([[4, 7], [10, 13]]); // 2x + (x + 1)
    const ev = probeEvents();
    const starts = ev.filter((e) => e.what === 'start');
    const ends = ev.filter((e) => e.what === 'end');
    expect(new Set(starts.map((e) => e.stage))).toEqual(new Set(['slow_a', 'slow_b']));
    expect(starts).toHaveLength(4); // two branches x two rows
    // Overlap: every branch call had started before any of them finished.
    expect(Math.max(...starts.map((e) => e.t))).toBeLessThan(Math.min(...ends.map((e) => e.t)));
    const join = result.stages.find((s) => s.stage === 'join')!;
    expect(join.items).toBe(2);
    expect(join.error).toBeUndefined();
  });

  it('counts its synchronous runs (priority 0) in the activity it is given, and not lower-priority ones', async () => {
    const activity = new SyncActivity();
    const transport = new InProcessTransport(h.weights);
    const ex = await Executor.create(p.manifest, transport, { activity });
    try {
      // busy(Infinity): only a run in flight counts, not one that ended a moment ago.
      const job = ex.run({ x: f32([[1, 2]]) }, { priority: 1 });
      expect(activity.busy(Infinity)).toBe(false);
      await job;
      const sync = ex.run({ x: f32([[1, 2]]) });
      expect(activity.busy(Infinity)).toBe(true);
      expect(activity.idleAt()).toBe(Infinity);
      await sync;
      expect(activity.busy(Infinity)).toBe(false);
      // Idle once the hold after this run's end is over.
      expect(activity.busy(activity.idleAt())).toBe(false);
      expect(activity.busy(activity.idleAt() - 1)).toBe(true);
      // Ended just now: still busy within the hold.
      expect(activity.busy()).toBe(true);
    } finally {
      await ex.close();
      await transport.close();
    }
  });

  it('places every stage on the run\'s time axis: start and end offsets from the request\'s start, producers before consumers', async () => {
    const origin = performance.now();
    await sleep(40); // the gateway's decoding, say: stage offsets count from the origin, not from run()
    const beforeRun = performance.now() - origin;
    // One row: each stage has one item, so the order of the stages is the order of that item's steps.
    const result = await p.executor.run({ x: f32([[1, 2]]) }, { startedAt: origin });
    const wall = performance.now() - origin;
    const [a, b, join] = ['slow_a', 'slow_b', 'join'].map((n) => result.stages.find((s) => s.stage === n)!);
    for (const s of [a, b, join]) {
      // Ordered against the clock, not a timer's nominal delay (a timer may fire a fraction of a millisecond early).
      expect(s.startMs, s.stage).toBeGreaterThanOrEqual(beforeRun);
      expect(s.endMs!, s.stage).toBeGreaterThanOrEqual(s.startMs! + s.queueWaitMs);
      expect(s.endMs!, s.stage).toBeLessThanOrEqual(wall);
    }
    // join's item enters its queue only once both branches have answered for it.
    expect(join.startMs).toBeGreaterThanOrEqual(Math.max(a.endMs!, b.endMs!));
    // The branches ran side by side: each started before the other ended.
    expect(a.startMs).toBeLessThan(b.endMs!);
    expect(b.startMs).toBeLessThan(a.endMs!);
  });

  it('returns empty outputs for a request with zero rows, running nothing', async () => {
    const result = await p.executor.run({ x: { datatype: 'FP32', shape: [0, 2], data: new Float32Array(0) } });
    expect(result.outputs.y).toEqual({ datatype: 'FP32', shape: [0, 2], data: new Float32Array(0) });
    expect(probeEvents()).toEqual([]);
  });
});

describe('Executor: failures', () => {
  let failing: Loaded;
  let held: Loaded;
  let twoStep: Loaded;
  beforeAll(async () => {
    failing = await h.load(`
name: failing
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs:
  - { name: p, datatype: FP32, shape: [-1, 1] }
  - { name: q, datatype: FP32, shape: [-1, 1] }
  - { name: unused, datatype: FP32, shape: [-1, 1] }
stages:
  - name: breaks
    kind: function
    module: stages/breaks.ts
    inputs: [x]
    outputs: [p]
  - name: sibling
    kind: function
    module: stages/sibling.ts
    inputs: [x]
    outputs: [s]
  - name: after_sibling
    kind: function
    module: stages/after.ts
    inputs: [s]
    outputs: [q]
  - name: sleepy
    kind: function
    module: stages/sleepy.ts
    inputs: [x]
    outputs: [r]
    timeout_ms: 100
  - name: sleepy_sink
    kind: function
    module: stages/after.ts
    inputs: [r]
    outputs: [{ name: unused, datatype: FP32, shape: [-1, 1] }]
`, {
      // x[0] picks the failure: 1 throws a plain Error, 2 a BadRequestError (its 400 must survive).
      'stages/breaks.ts': `import { BadRequestError } from ${JSON.stringify(ERRORS_MODULE)};\n${probeModule(`
        await sleep(30);
        const v = item.x.data[0];
        if (v === 1) throw new Error('boom on purpose');
        if (v === 2) throw new BadRequestError('x must not be 2');
        return { p: item.x };`)}`,
      'stages/sibling.ts': probeModule('await sleep(250); return { s: item.x };'),
      'stages/after.ts': probeModule('const [t] = Object.values(item); return { q: t, unused: t };'),
      // Sleeps only when x[0] is 3: the per-stage timeout case.
      'stages/sleepy.ts': probeModule('if (item.x.data[0] === 3) await sleep(1500); return { r: item.x };'),
    });
    held = await h.load(`
name: held
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: hold
    kind: function
    module: stages/hold.ts
    inputs: [x]
    outputs: [y]
    # A batch leaves only when full: a lone item stays queued.
    batch: { max_size: 4, max_delay_ms: 600000 }
`, { 'stages/hold.ts': probeModule('return { y: item.x };') });
    twoStep = await h.load(`
name: two_step
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: first
    kind: function
    module: stages/first.ts
    inputs: [x]
    outputs: [m]
  - name: second
    kind: function
    module: stages/second.ts
    inputs: [m]
    outputs: [y]
`, {
      'stages/first.ts': probeModule('await sleep(150); return { m: item.x };'),
      'stages/second.ts': probeModule('return { y: item.m };'),
    });
  });

  it("fails the request with the stage's name and abandons sibling work downstream", async () => {
    const f = await failureOf(failing.executor.run({ x: f32([[1]]) }));
    expect(f.error.code).toBe('stage_failed');
    expect(f.error.message).toBe("stage 'breaks' failed: boom on purpose");
    expect(f.message).toBe(f.error.message);
    expect(f.stages.find((s) => s.stage === 'breaks')?.error).toBe('boom on purpose');
    // The sibling was already running; let it finish, then make sure nothing downstream of it ran.
    expect(started('sibling')).toBe(true);
    await until(() => ended('sibling'), 5_000, 'the sibling to finish');
    await sleep(50);
    expect(started('after_sibling')).toBe(false);
  });

  it("keeps a stage's own error code (invalid_input from a BadRequestError thrown inside the stage)", async () => {
    const f = await failureOf(failing.executor.run({ x: f32([[2]]) }));
    expect(f.error.code).toBe('invalid_input');
    expect(f.error.message).toBe("stage 'breaks' failed: x must not be 2");
  });

  it("names the stage once when its model fails on a request's input (ONNX Runtime's own error)", async () => {
    const add = addModel();
    const mismatch = await h.load(`
name: mismatch
inputs:
  - { name: a, datatype: FP32, shape: [-1, 2] }
  - { name: b, datatype: FP32, shape: [-1, 3] }
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: join
    kind: onnx
    weights: ${weightsYaml('mismatch/add.onnx', 'add.onnx', add)}
    inputs: { a: a, b: b }
    outputs: { sum: y }
`, { 'add.onnx': add });
    // Widths 2 and 3 are the manifest's, and the model's Add (both inputs [batch, n]) cannot broadcast them.
    const f = await failureOf(mismatch.executor.run({ a: f32([[1, 2]]), b: f32([[1, 2, 3]]) }));
    expect(f.error.code).toBe('stage_failed');
    expect(f.error.message).toMatch(/^stage 'join' failed: /);
    expect(f.error.message.split("stage 'join'")).toHaveLength(2);
  });

  it('times a slow stage out with 504 naming the stage', async () => {
    const f = await failureOf(failing.executor.run({ x: f32([[3]]) }));
    expect(f.error.code).toBe('timeout');
    expect(f.error.message).toBe("stage 'sleepy' timed out after 100 ms");
    expect(f.stages.find((s) => s.stage === 'sleepy')?.error).toBe(f.error.message);
    expect(started('sleepy_sink')).toBe(false);
  });

  it('times the whole request out with 504 after timeoutMs and drops its queued items', async () => {
    const f = await failureOf(held.executor.run({ x: f32([[1]]) }, { timeoutMs: 100 }));
    expect(f.error.code).toBe('timeout');
    expect(f.error.message).toBe("request timed out after 100 ms waiting on stage 'hold'");
    // The run record says where the request was stuck.
    expect(f.stages.find((s) => s.stage === 'hold')?.error).toBe(`unfinished: ${f.error.message}`);
    expect(held.executor.queueDepths()).toEqual({ hold: 0 });
    // The stage never saw the item, and a full batch later does not carry it either.
    const later = await Promise.all([1, 2, 3, 4].map((v) => held.executor.run({ x: f32([[v * 10]]) })));
    expect(later.map((r) => rowsOf(r.outputs.y))).toEqual([[[10]], [[20]], [[30]], [[40]]]);
    expect(probeEvents().filter((e) => e.stage === 'hold' && e.what === 'start').map((e) => e.detail)).toEqual(['10', '20', '30', '40']);
  });

  it('drops pending work when the client goes away', async () => {
    const ac = new AbortController();
    const run = twoStep.executor.run({ x: f32([[5]]) }, { signal: ac.signal });
    await until(() => started('first'), 5_000, "stage 'first' to start");
    ac.abort();
    const f = await failureOf(run);
    expect(f.error.code).toBe('cancelled');
    // 'first' was mid-call; when it returns, 'second' must not be started for a request nobody waits for.
    await until(() => ended('first'), 5_000, "stage 'first' to finish");
    await sleep(50);
    expect(started('second')).toBe(false);
  });

  it('removes a gone client\'s items from stage queues', async () => {
    const ac = new AbortController();
    const run = held.executor.run({ x: f32([[1], [2]]) }, { signal: ac.signal });
    await until(() => held.executor.queueDepths().hold === 2, 5_000, 'two queued items');
    ac.abort();
    expect((await failureOf(run)).error.code).toBe('cancelled');
    expect(held.executor.queueDepths()).toEqual({ hold: 0 });
    expect(started('hold')).toBe(false);
  });

  it('refuses at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const f = await failureOf(twoStep.executor.run({ x: f32([[1]]) }, { signal: ac.signal }));
    expect(f.error.code).toBe('cancelled');
    await sleep(20);
    expect(started('first')).toBe(false);
  });
});

describe('Executor: function stages batch items of any shapes', () => {
  let p: Loaded;
  beforeAll(async () => {
    p = await h.load(`
name: mixed
# x = [count]: 'fan' makes count items t of lengths 1..count; 'len' (a function stage) reads each one's length.
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: n, datatype: FP32, shape: [-1, 1] }]
stages:
  - { name: fan, kind: function, module: stages/fan.ts, fanout: true, inputs: [x], outputs: [t] }
  - name: len
    kind: function
    module: stages/len.ts
    inputs: [t]
    outputs: [{ name: n, datatype: FP32, shape: [-1, 1] }]
    batch: { max_size: 8, max_delay_ms: 20 }
`, {
      'stages/fan.ts': probeModule('return Array.from({ length: item.x.data[0] }, (_, j) => ({ t: f32(new Array(j + 1).fill(j)) }));'),
      'stages/len.ts': probeModule('return { n: f32([item.t.shape[0]]) };'),
    });
  });

  it("sends a fan-out's children of four shapes to a function stage in one batch", async () => {
    const r = await p.executor.run({ x: f32([[4]]) });
    expect(rowsOf(r.outputs.n)).toEqual([[1], [2], [3], [4]]);
    // The module gets its items one at a time, so nothing needs them to match: one call, not one per shape.
    expect(r.stages.find((s) => s.stage === 'len')!.batchSizes).toEqual([4]);
  });
});

describe('Executor: fan-out', () => {
  let p: Loaded;
  const double = scaleModel(2, ['batch', 2]);
  beforeAll(async () => {
    p = await h.load(`
name: fanout
# x = [id, count]: 'fan' makes count items t = [id, j]; 'double' (ONNX) doubles each; 'combine' reads
# the level-1 t2 with the level-0 x and m (m from a slow level-0 stage that finishes after the fan-out).
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs:
  - { name: t, datatype: FP32, shape: [-1, 2] }
  - { name: z, datatype: FP32, shape: [-1, 4] }
stages:
  - name: fan
    kind: function
    module: stages/fan.ts
    fanout: true
    inputs: [x]
    outputs: [t]
  - name: double
    kind: onnx
    weights: ${weightsYaml('fanout/double.onnx', 'double.onnx', double)}
    inputs: { x: t }
    outputs: { y: t2 }
    batch: { max_size: 8, max_delay_ms: 20 }
  - name: meta
    kind: function
    module: stages/meta.ts
    inputs: [x]
    outputs: [m]
  - name: combine
    kind: function
    module: stages/combine.ts
    inputs: [x, m, t2]
    outputs: [{ name: z, datatype: FP32, shape: [-1, 4] }]
`, {
      'double.onnx': double,
      // Later rows finish first, so lineage order is not completion order.
      'stages/fan.ts': probeModule(`
        const [id, count] = Array.from(item.x.data as Float32Array);
        await sleep((10 - id) * 15);
        return Array.from({ length: count }, (_, j) => ({ t: f32([id, j]) }));`),
      'stages/meta.ts': probeModule('await sleep(250); return { m: f32([item.x.data[0] * 10]) };'),
      'stages/combine.ts': probeModule(`
        const [a, b] = Array.from(item.t2.data as Float32Array);
        await sleep(20 - b * 4);
        return { z: f32([a, b, item.x.data[1], item.m.data[0]]) };`),
    });
  });

  it('concatenates fan-out items (0, 1 and 3 per row) in lineage order, joining level-0 and level-1 tensors', async () => {
    const r = await p.executor.run({ x: f32([[1, 0], [2, 1], [3, 3]]) });
    expect(r.outputs.t.shape).toEqual([4, 2]);
    expect(rowsOf(r.outputs.t)).toEqual([[2, 0], [3, 0], [3, 1], [3, 2]]);
    expect(r.outputs.z.shape).toEqual([4, 4]);
    expect(rowsOf(r.outputs.z)).toEqual([
      [4, 0, 1, 20],
      [6, 0, 3, 30],
      [6, 2, 3, 30],
      [6, 4, 3, 30],
    ]);
    const stage = (name: string) => r.stages.find((s) => s.stage === name)!;
    expect(stage('fan').items).toBe(3);
    expect(stage('meta').items).toBe(3);
    expect(stage('double').items).toBe(4);
    expect(stage('combine').items).toBe(4);
    // Each double batch is at most max_size and together they hold the four items.
    expect(stage('double').batchSizes.every((n) => n >= 1 && n <= 8)).toBe(true);
    // The fan-out items were there before m (the slow level-0 tensor): combine had to wait for m.
    const times = (stage: string, what: 'start' | 'end') => probeEvents().filter((e) => e.stage === stage && e.what === what).map((e) => e.t);
    expect(Math.max(...times('fan', 'end'))).toBeLessThan(Math.min(...times('meta', 'end')));
    expect(times('combine', 'start')).toHaveLength(4);
    expect(Math.min(...times('combine', 'start'))).toBeGreaterThanOrEqual(Math.min(...times('meta', 'end')));
  });

  it('gives [0, ...] outputs when every row fans out to nothing', async () => {
    const r = await p.executor.run({ x: f32([[1, 0], [2, 0]]) });
    expect(r.outputs.t).toEqual({ datatype: 'FP32', shape: [0, 2], data: new Float32Array(0) });
    expect(r.outputs.z).toEqual({ datatype: 'FP32', shape: [0, 4], data: new Float32Array(0) });
    // Stages no item reached are left out of the run record.
    expect(r.stages.map((s) => s.stage).sort()).toEqual(['fan', 'meta']);
    expect(started('combine')).toBe(false);
  });

  it('handles one item from one row', async () => {
    const r = await p.executor.run({ x: f32([[7, 1]]) });
    expect(rowsOf(r.outputs.t)).toEqual([[7, 0]]);
    expect(rowsOf(r.outputs.z)).toEqual([[14, 0, 1, 70]]);
  });

  it('keeps two concurrent requests\' fan-out items apart', async () => {
    const [a, b] = await Promise.all([
      p.executor.run({ x: f32([[1, 2]]) }),
      p.executor.run({ x: f32([[2, 3], [4, 1]]) }),
    ]);
    expect(rowsOf(a.outputs.z)).toEqual([[2, 0, 2, 10], [2, 2, 2, 10]]);
    expect(rowsOf(b.outputs.z)).toEqual([[4, 0, 3, 20], [4, 2, 3, 20], [4, 4, 3, 20], [8, 0, 1, 40]]);
  });
});

describe('Executor: deadlines and concurrency', () => {
  let stuck: Loaded;
  beforeAll(async () => {
    stuck = await h.load(`
name: stuck
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: hangs
    kind: function
    module: stages/hangs.ts
    inputs: [x]
    outputs: [y]
    timeout_ms: 100
    # Short enough that items stuck behind hung calls would show up as queue timeouts.
    batch: { max_size: 1, queue_timeout_ms: 3000 }
`, {
      // x < 0 never settles; the batch's signal is kept to see that the stage was told.
      'stages/hangs.ts': `
const g = globalThis as { __ensembleSignals?: (AbortSignal | undefined)[] };
export default {
  async process(item: any, ctx: any) {
    (g.__ensembleSignals ??= []).push(ctx.signal);
    if (item.x.data[0] < 0) await new Promise(() => undefined);
    return { y: item.x };
  },
};
`,
    });
  });

  it('fails every call of a function stage that never settles with 504 at its deadline and frees its slot', async () => {
    const g = globalThis as { __ensembleSignals?: (AbortSignal | undefined)[] };
    g.__ensembleSignals = [];
    const n = FUNCTION_STAGE_CONCURRENCY + 8;
    const t0 = performance.now();
    const failures = await Promise.all(Array.from({ length: n }, () => failureOf(stuck.executor.run({ x: f32([[-1]]) }))));
    // Every call times out on its own deadline: none waits behind hung calls for a slot.
    expect(performance.now() - t0).toBeLessThan(2500);
    for (const f of failures) {
      expect(f.error.code).toBe('timeout');
      expect(f.error.message).toBe("stage 'hangs' timed out after 100 ms");
    }
    // The module saw each batch's deadline as ctx.signal, aborted with that 504.
    expect(g.__ensembleSignals).toHaveLength(n);
    expect(g.__ensembleSignals!.every((s) => s?.aborted && (s.reason as Error).message === "stage 'hangs' timed out after 100 ms")).toBe(true);
    // The slots were freed: a normal item runs.
    const ok = await stuck.executor.run({ x: f32([[7]]) });
    expect(rowsOf(ok.outputs.y)).toEqual([[7]]);
  });

  it("bounds an ONNX stage's batches in flight by what the transport says, not by the transport's kind", async () => {
    const scale = scaleModel(2, ['batch', 1]);
    const dir = await mkdtemp(join(tmpdir(), 'ensemble-concurrency-'));
    try {
      await writeFile(join(dir, 'scale.onnx'), scale);
      await writeFile(join(dir, 'pipeline.yaml'), `
name: wide
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: double
    kind: onnx
    weights: ${weightsYaml('wide/scale.onnx', 'scale.onnx', scale)}
    inputs: { x: x }
    outputs: { y: y }
`);
      const manifest = await loadManifest(join(dir, 'pipeline.yaml'));
      await pushPipeline(manifest, { s3: h.local.s3, bucket: h.local.settings.bucket });
      const transport = new WideTransport(new InProcessTransport(h.weights), 3);
      const ex = await Executor.create(manifest, transport);
      try {
        const results = await Promise.all([1, 2, 3, 4, 5, 6].map((v) => ex.run({ x: f32([[v]]) })));
        expect(results.map((r) => rowsOf(r.outputs.y))).toEqual([[[2]], [[4]], [[6]], [[8]], [[10]], [[12]]]);
        // One instance in the manifest, three calls at once: the transport's word, not `instances`.
        expect(transport.maxInFlight).toBe(3);
      } finally {
        await ex.close();
        await transport.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A transport of a kind the executor has never heard of that takes `width`
 * calls of a stage at once (sessions for that many, whatever `instances`
 * says) and counts how many it is given at a time.
 */
class WideTransport implements StageTransport {
  readonly kind = 'in-process';
  maxInFlight = 0;
  private inFlight = 0;
  constructor(private readonly inner: InProcessTransport, private readonly width: number) {}
  load(m: Manifest): Promise<void> {
    return this.inner.load({ ...m, stages: m.stages.map((s) => ({ ...s, scale: { ...s.scale, instances: this.width } })) });
  }
  concurrency(): number { return this.width; }
  async invoke(pipeline: string, stage: string, items: Item[]): Promise<BatchResult> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      // Long enough for the calls to overlap.
      await sleep(40);
      return await this.inner.invoke(pipeline, stage, items);
    } finally {
      this.inFlight--;
    }
  }
  close(): Promise<void> { return this.inner.close(); }
}

describe('Executor: big requests and max_items', () => {
  let fan: Loaded;
  let grow: Loaded;
  beforeAll(async () => {
    fan = await h.load(`
name: bounded
max_items: 5
# x = [count]: 'fan' makes count items.
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: t, datatype: FP32, shape: [-1, 1] }]
stages:
  - name: fan
    kind: function
    module: stages/fan.ts
    fanout: true
    inputs: [x]
    outputs: [t]
`, {
      'stages/fan.ts': probeModule('return Array.from({ length: item.x.data[0] }, (_, j) => ({ t: f32([j]) }));'),
    });
    // Every item one long except the very last: the join's pieces must all pad to the longest of the whole output.
    grow = await h.load(`
name: grow
max_items: 20000
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs:
  - { name: t, datatype: FP32, shape: [-1, -1], ragged: { pad_value: -1, lengths: t_shape }, row_index: t_row }
stages:
  - name: grow
    kind: function
    module: stages/grow.ts
    inputs: [x]
    outputs: [t]
    batch: { max_size: 512 }
`, {
      'stages/grow.ts': `
const f32 = (values: number[]) => ({ datatype: 'FP32', shape: [values.length], data: Float32Array.from(values) });
export default {
  async process(item: any) {
    const i = item.x.data[0];
    return { t: f32(i === 9999 ? [i, 1, 2] : [i]) };
  },
};`,
    });
  });

  it('refuses request rows over max_items with 413 naming it, before any stage runs', async () => {
    resetProbe();
    const f = await failureOf(fan.executor.run({ x: f32([[1], [1], [1], [1], [1], [1]]) }));
    expect(f.error.code).toBe('too_large');
    expect(f.error.message).toBe("input 'x' has 6 items (dim 0), over the pipeline's max_items 5");
    expect(probeEvents()).toHaveLength(0);
  });

  it('refuses a request whose fan-out makes more than max_items items, naming the stage and the limit', async () => {
    const ok = await fan.executor.run({ x: f32([[2], [3]]) });
    expect(ok.outputs.t.shape).toEqual([5, 1]);
    const f = await failureOf(fan.executor.run({ x: f32([[3], [3]]) }));
    expect(f.error.code).toBe('too_large');
    expect(f.error.message).toBe("stage 'fan' produced 6 items for this request, over the pipeline's max_items 5");
  });

  it("refuses a request whose stages' outputs pass max_run_bytes, naming the stage and the limit", async () => {
    // Each item's output is 100 FP32 values (400 bytes): two items fit in 1000 bytes, three do not.
    const wide = await h.load(`
name: wide
max_run_bytes: 1000
inputs: [{ name: x, datatype: FP32, shape: [-1, 1] }]
outputs: [{ name: w, datatype: FP32, shape: [-1, 100] }]
stages:
  - { name: widen, kind: function, module: stages/widen.ts, inputs: [x], outputs: [w] }
`, { 'stages/widen.ts': probeModule('return { w: f32(Array.from({ length: 100 }, () => item.x.data[0])) };') });
    const ok = await wide.executor.run({ x: f32([[1], [2]]) });
    expect(ok.outputs.w.shape).toEqual([2, 100]);
    const f = await failureOf(wide.executor.run({ x: f32([[1], [2], [3]]) }));
    expect(f.error.code).toBe('too_large');
    expect(f.error.message).toBe("stage 'widen' brought this request's stage outputs to 1200 bytes, over the pipeline's max_run_bytes 1000: "
      + 'send fewer or smaller items per request (or raise max_run_bytes)');
  });

  it('serves 10 000 rows, seeded and joined in pieces, in row order, padded to the longest item', async () => {
    const n = 10_000;
    const r = await grow.executor.run({ x: { datatype: 'FP32', shape: [n, 1], data: Float32Array.from({ length: n }, (_, i) => i) } });
    expect(r.outputs.t.shape).toEqual([n, 3]);
    const t = r.outputs.t.data as Float32Array;
    expect(Array.from(t.subarray(0, 6))).toEqual([0, -1, -1, 1, -1, -1]);
    expect(Array.from(t.subarray(3 * 4321, 3 * 4322))).toEqual([4321, -1, -1]);
    expect(Array.from(t.subarray(3 * (n - 1)))).toEqual([n - 1, 1, 2]);
    expect(r.outputs.t_shape.shape).toEqual([n, 1]);
    expect((r.outputs.t_shape.data as BigInt64Array)[n - 1]).toBe(3n);
    expect((r.outputs.t_shape.data as BigInt64Array)[n - 2]).toBe(1n);
    expect(Array.from(r.outputs.t_row.data as BigInt64Array).every((v, i) => v === BigInt(i))).toBe(true);
    expect(r.stages.find((s) => s.stage === 'grow')!.items).toBe(n);
  });
});
