import { afterEach, describe, expect, it } from 'vitest';
import { Batcher, type BatcherOptions, type ItemRun, type StageBatch } from '../../src/batching/batcher.js';
import { OverloadedError, StageError, TimeoutError, type EnsembleError } from '../../src/errors.js';
import { RunCancel } from '../../src/deadline.js';
import type { BatchResult } from '../../src/runtime/types.js';
import type { Item, Tensor } from '../../src/tensor/types.js';

/** A per-item FP32 tensor `v` of the given shape, filled with `value`. */
function item(value: number, shape: number[] = [2]): Item {
  const n = shape.reduce((a, b) => a * b, 1);
  return { v: { datatype: 'FP32', shape, data: new Float32Array(n).fill(value) } };
}

const first = (t: Tensor): number => (t.data as Float32Array)[0];

/** A promise with its resolve exposed, to hold a stage call open until the test says so. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A batcher whose stage doubles every item's values and remembers each batch
 * it was given (the first value of every item), optionally waiting on `hold`.
 */
function doubling(opts: Partial<BatcherOptions> = {}, hold?: Promise<void>) {
  const batches: number[][] = [];
  const run = async (items: Item[]): Promise<BatchResult> => {
    batches.push(items.map((it) => first(it.v)));
    if (hold) await hold;
    return {
      outcomes: items.map((it) => ({
        ok: true as const,
        items: [{ v: { ...it.v, data: Float32Array.from(it.v.data as Float32Array, (x) => x * 2) } }],
      })),
      computeMs: 1,
      coldStart: batches.length === 1,
    };
  };
  const batcher = new Batcher({
    stage: 'double', maxSize: 4, maxDelayMs: 0, maxQueue: 100, queueTimeoutMs: 30_000,
    concurrency: 1, timeoutMs: 30_000, run, ...opts,
  });
  made.push(batcher);
  return { batcher, batches };
}

const made: Batcher[] = [];
afterEach(async () => {
  for (const b of made.splice(0)) await b.close();
});

const resultOf = (r: ItemRun): number => {
  if (!r.outcome.ok) throw new Error(r.outcome.error);
  return first(r.outcome.items[0].v);
};

describe('Batcher', () => {
  it('sends a batch as soon as max_size compatible items are queued, without waiting for max_delay', async () => {
    // A delay no test would survive: only the size trigger can release these items.
    const { batcher, batches } = doubling({ maxSize: 4, maxDelayMs: 3_600_000 });
    const runs = await Promise.all([1, 2, 3, 4].map((v) => batcher.submit(item(v))));
    expect(batches).toEqual([[1, 2, 3, 4]]);
    expect(runs.map((r) => r.batchSize)).toEqual([4, 4, 4, 4]);
    expect(new Set(runs.map((r) => r.batchId)).size).toBe(1);
    expect(runs.map(resultOf)).toEqual([2, 4, 6, 8]);

    // A fifth item alone does not make a batch: it waits for more (or the delay).
    const fifth = batcher.submit(item(5));
    await sleep(20);
    expect(batcher.queued).toBe(1);
    expect(batches).toHaveLength(1);
    // close() drains it anyway.
    await batcher.close();
    expect(resultOf(await fifth)).toBe(10);
    expect(batches).toEqual([[1, 2, 3, 4], [5]]);
  });

  it('sends a partial batch once its oldest item has waited max_delay, gathering what arrived meanwhile', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 150 });
    const a = batcher.submit(item(1));
    await sleep(10);
    expect(batches).toHaveLength(0);
    const b = batcher.submit(item(2));
    const [ra, rb] = await Promise.all([a, b]);
    expect(batches).toEqual([[1, 2]]);
    expect(ra.batchId).toBe(rb.batchId);
    expect(ra.batchSize).toBe(2);
    // The batch left because of the delay, not because it was full: the first item waited for it.
    expect(ra.queueWaitMs).toBeGreaterThanOrEqual(149);
    expect(ra.queueWaitMs).toBeGreaterThan(rb.queueWaitMs);
  });

  it('with max_delay 0 and a free instance, each item leaves at once on its own', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 0, concurrency: 4 });
    await Promise.all([1, 2, 3].map((v) => batcher.submit(item(v))));
    expect(batches).toEqual([[1], [2], [3]]);
  });

  it('with a sub-millisecond max_delay, keeps what one synchronous run submits together and sends it at the end of the turn', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 0.2, concurrency: 4 });
    const a = batcher.submit(item(1));
    // A slow synchronous stretch, well past the delay, between two submits of the same run.
    const until = performance.now() + 5;
    while (performance.now() < until) { /* busy */ }
    const b = batcher.submit(item(2));
    expect(batches).toHaveLength(0);
    await Promise.all([a, b]);
    expect(batches).toEqual([[1, 2]]);
    // A lone item leaves by itself too.
    expect(resultOf(await batcher.submit(item(3)))).toBe(6);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('merges items of concurrent submitters into one batch and gives each its own result', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 40 });
    // Two "requests" submitting at the same time, interleaved.
    const requestA = Promise.all([batcher.submit(item(10)), batcher.submit(item(11))]);
    const requestB = Promise.all([batcher.submit(item(20)), batcher.submit(item(21)), batcher.submit(item(22))]);
    const [ra, rb] = await Promise.all([requestA, requestB]);
    expect(batches).toEqual([[10, 11, 20, 21, 22]]);
    expect(ra.map(resultOf)).toEqual([20, 22]);
    expect(rb.map(resultOf)).toEqual([40, 42, 44]);
    expect(new Set([...ra, ...rb].map((r) => r.batchId)).size).toBe(1);
    expect([...ra, ...rb].every((r) => r.batchSize === 5)).toBe(true);
  });

  it('keeps items of different shapes in different batches', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 40, concurrency: 2 });
    const runs = await Promise.all([
      batcher.submit(item(1, [2])), batcher.submit(item(2, [3])), batcher.submit(item(3, [2])), batcher.submit(item(4, [3])),
    ]);
    expect(batches.map((b) => [...b].sort())).toEqual(expect.arrayContaining([[1, 3], [2, 4]]));
    expect(batches).toHaveLength(2);
    expect(runs.map((r) => r.batchSize)).toEqual([2, 2, 2, 2]);
    expect(runs[0].batchId).toBe(runs[2].batchId);
    expect(runs[0].batchId).not.toBe(runs[1].batchId);
    // Different datatypes never share either.
    const ints: Item = { v: { datatype: 'INT32', shape: [2], data: Int32Array.of(7, 7) } };
    const { batcher: mixed, batches: mixedBatches } = doubling({ maxSize: 8, maxDelayMs: 40, concurrency: 2 });
    await Promise.all([mixed.submit(item(1, [2])), mixed.submit(ints).catch(() => undefined)]);
    expect(mixedBatches).toHaveLength(2);
  });

  it('with anyShapes, batches items of different shapes and ranks together, in arrival order', async () => {
    const { batcher, batches } = doubling({ maxSize: 3, maxDelayMs: 40, concurrency: 2, anyShapes: true });
    const runs = await Promise.all([
      batcher.submit(item(1, [2])), batcher.submit(item(2, [3])), batcher.submit(item(3, [2, 2])), batcher.submit(item(4, [5])),
    ]);
    // max_size still bounds a batch: three leave together, the fourth after the delay.
    expect(batches).toEqual([[1, 2, 3], [4]]);
    expect(runs.map((r) => r.batchSize)).toEqual([3, 3, 3, 1]);
    expect(runs.map(resultOf)).toEqual([2, 4, 6, 8]);
  });

  it('lets items that differ only along pad_axis share a batch, but not along another axis', async () => {
    const { batcher, batches } = doubling({ maxSize: 8, maxDelayMs: 40, padAxis: 1, concurrency: 2 });
    const runs = await Promise.all([
      batcher.submit(item(1, [2, 3])), batcher.submit(item(2, [2, 5])), batcher.submit(item(3, [2, 1])),
      batcher.submit(item(4, [3, 5])), // axis 0 differs: not paddable
    ]);
    expect(batches).toHaveLength(2);
    expect(batches).toContainEqual([1, 2, 3]);
    expect(batches).toContainEqual([4]);
    expect(runs.slice(0, 3).every((r) => r.batchSize === 3 && r.batchId === runs[0].batchId)).toBe(true);
    expect(runs[3].batchSize).toBe(1);
  });

  it('refuses items beyond max_queue with a 429 OverloadedError carrying Retry-After seconds', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 1, maxQueue: 2, concurrency: 1 }, held.promise);
    const inFlight = batcher.submit(item(1));
    await sleep(5);
    expect(batcher.busy).toBe(1);
    const queued = [batcher.submit(item(2)), batcher.submit(item(3))];
    expect(batcher.queued).toBe(2);
    const refused = await batcher.submit(item(4)).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OverloadedError);
    const e = refused as OverloadedError;
    expect(e.code).toBe('overloaded');
    expect(e.message).toContain("stage 'double'");
    expect(e.message).toContain('max_queue 2');
    expect(Number.isInteger(e.retryAfterSeconds)).toBe(true);
    expect(e.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // The refused item never reached the stage; the others still complete.
    held.open();
    expect((await Promise.all([inFlight, ...queued])).map(resultOf)).toEqual([2, 4, 6]);
    expect(batches.flat()).toEqual([1, 2, 3]);
  });

  it('fails an item that waits longer than queue_timeout_ms with 504, even while every instance stays busy', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 1, queueTimeoutMs: 50, concurrency: 1 }, held.promise);
    const inFlight = batcher.submit(item(1));
    const waiting = batcher.submit(item(2));
    // The instance stays busy until the queued item has failed: nothing else will wake the queue up.
    const err = await waiting.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('timeout');
    expect((err as Error).message).toContain("stage 'double'");
    expect((err as Error).message).toContain('queue_timeout_ms 50');
    expect(batcher.queued).toBe(0);
    held.open();
    expect(resultOf(await inFlight)).toBe(2);
    expect(batches).toEqual([[1]]);
  });

  it('fails the whole batch with 504 naming the stage when a call outlives timeout_ms, and close() does not wait for that call', async () => {
    const { batcher } = doubling({ maxSize: 2, maxDelayMs: 20, timeoutMs: 50 }, new Promise(() => undefined));
    const err = await Promise.all([batcher.submit(item(1)), batcher.submit(item(2))]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe("stage 'double' timed out after 50 ms");
    // The call never ends, but every item has its answer: close() must not wait for it forever.
    await batcher.close();
  });

  it('keeps a timed-out call\'s instance busy until the call really ends, so the next batch waits for it', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 1, concurrency: 1, timeoutMs: 30 }, held.promise);
    await expect(batcher.submit(item(1))).rejects.toThrow("stage 'double' timed out after 30 ms");
    const next = batcher.submit(item(2));
    await sleep(20);
    // The first call still runs (think: an ONNX session mid-inference); the second must not start beside it.
    expect(batches).toEqual([[1]]);
    expect(batcher.busy).toBe(1);
    expect(batcher.queued).toBe(1);
    held.open();
    // Held open again by the same gate, which is now open: the second call completes.
    expect(resultOf(await next)).toBe(4);
    expect(batches).toEqual([[1], [2]]);
  });

  it('drops a queued item when its signal aborts, and refuses an already-aborted one', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 1, concurrency: 1 }, held.promise);
    const inFlight = batcher.submit(item(1));
    const ac = new AbortController();
    const queued = batcher.submit(item(2), ac.signal);
    expect(batcher.queued).toBe(1);
    ac.abort(new TimeoutError('gone'));
    await expect(queued).rejects.toThrow('gone');
    expect(batcher.queued).toBe(0);
    await expect(batcher.submit(item(3), ac.signal)).rejects.toThrow('gone');
    held.open();
    await inFlight;
    expect(batches).toEqual([[1]]);
  });

  it("drops a run's queued items when its RunCancel aborts, in every batcher holding some, and leaves others' items", async () => {
    const held = gate();
    const first = doubling({ maxSize: 1, concurrency: 1 }, held.promise);
    const second = doubling({ maxSize: 1, concurrency: 1 }, held.promise);
    const inFlight = [first.batcher.submit(item(1)), second.batcher.submit(item(1))];
    const run = new RunCancel();
    const other = new RunCancel();
    const mine = [first.batcher.submit(item(2), run), second.batcher.submit(item(3), run)];
    const theirs = first.batcher.submit(item(4), other);
    expect(first.batcher.queued).toBe(2);
    run.abort(new TimeoutError('run failed'));
    for (const p of mine) await expect(p).rejects.toThrow('run failed');
    expect(first.batcher.queued).toBe(1);
    expect(second.batcher.queued).toBe(0);
    await expect(first.batcher.submit(item(5), run)).rejects.toThrow('run failed');
    held.open();
    await Promise.all(inFlight);
    expect(resultOf(await theirs)).toBe(8);
    expect(first.batches).toEqual([[1], [4]]);
  });

  it('close() lets queued and in-flight items finish, then refuses new ones with 503', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 2, maxDelayMs: 3_600_000, concurrency: 1 }, held.promise);
    const a = [batcher.submit(item(1)), batcher.submit(item(2))]; // full batch: in flight
    const b = batcher.submit(item(3)); // queued behind it
    await sleep(5);
    let closed = false;
    const closing = batcher.close().then(() => { closed = true; });
    await sleep(20);
    expect(closed).toBe(false);
    const refused = await batcher.submit(item(4)).then(() => undefined, (e: unknown) => e);
    expect((refused as { code?: string }).code).toBe('not_ready');
    held.open();
    await closing;
    expect((await Promise.all([...a, b])).map(resultOf)).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('sends a full batch of one shape at once even while a lone item of another shape waits at the head', async () => {
    const { batcher, batches } = doubling({ maxSize: 2, maxDelayMs: 500, concurrency: 2 });
    const finished: string[] = [];
    const lone = batcher.submit(item(1, [3])).then((r) => { finished.push('lone'); return r; });
    await sleep(5);
    const full = Promise.all([batcher.submit(item(2, [2])), batcher.submit(item(3, [2]))])
      .then((r) => { finished.push('full'); return r; });
    const runs = await full;
    // Not held ~500 ms behind the head: it left as soon as it was full.
    expect(runs[0].queueWaitMs).toBeLessThan(300);
    expect(batches).toEqual([[2, 3]]);
    const first = await lone;
    expect(finished).toEqual(['full', 'lone']);
    // The lone item still left on its own delay.
    expect(first.queueWaitMs).toBeGreaterThanOrEqual(499);
    expect(batches).toEqual([[2, 3], [1]]);
  });

  it('among groups that may leave, sends the one with the oldest item first', async () => {
    const held = gate();
    const { batcher, batches } = doubling({ maxSize: 2, maxDelayMs: 30, concurrency: 1 }, held.promise);
    const busy = [batcher.submit(item(0)), batcher.submit(item(0))]; // full: takes the only slot
    await sleep(5);
    const lone = batcher.submit(item(1, [3])); // oldest, alone: leaves only on its delay
    const fullLater = [batcher.submit(item(2, [2])), batcher.submit(item(3, [2]))];
    const fullerLater = [batcher.submit(item(4, [5])), batcher.submit(item(5, [5]))];
    await sleep(60);
    held.open();
    await Promise.all([...busy, lone, ...fullLater, ...fullerLater]);
    expect(batches).toEqual([[0, 0], [1], [2, 3], [4, 5]]);
  });

  it('keeps up with a long queue of items that all differ in shape', async () => {
    const { batcher, batches } = doubling({ maxSize: 4, maxDelayMs: 0, concurrency: 1, maxQueue: 5000 });
    const t0 = performance.now();
    const runs = await Promise.all(Array.from({ length: 2000 }, (_, i) => batcher.submit(item(i, [1 + i]))));
    expect(runs).toHaveLength(2000);
    expect(batches).toHaveLength(2000);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('gives each call one AbortSignal that aborts with a 504 naming the stage at timeout_ms', async () => {
    const signals: AbortSignal[] = [];
    let ended = false;
    const batcher = new Batcher({
      stage: 'listens', maxSize: 1, maxDelayMs: 0, maxQueue: 10, queueTimeoutMs: 10_000, concurrency: 1, timeoutMs: 50,
      run: (items, signal) => {
        signals.push(signal);
        // A well-behaved stage: gives up when told to, a little later.
        if (first(items[0].v) === 1) {
          return new Promise<BatchResult>((_, reject) => signal.addEventListener('abort', () => {
            setTimeout(() => { ended = true; reject(new Error('stopped')); }, 20);
          }));
        }
        return Promise.resolve({ outcomes: [{ ok: true as const, items }], computeMs: 0, coldStart: false });
      },
    });
    made.push(batcher);
    const err = await batcher.submit(item(1)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toBe("stage 'listens' timed out after 50 ms");
    expect(signals[0]).toBeInstanceOf(AbortSignal);
    expect(signals[0].aborted).toBe(true);
    expect(signals[0].reason).toBe(err);
    // The slot is freed once the call really ends, and the next call gets a fresh signal.
    const ok = await batcher.submit(item(2));
    expect(ended).toBe(true);
    expect(ok.outcome.ok).toBe(true);
    expect(signals[1]).not.toBe(signals[0]);
    await sleep(80);
    // A call that ended in time is never aborted afterwards.
    expect(signals[1].aborted).toBe(false);
  });

  it('passes per-item errors to their own items only', async () => {
    const batcher = new Batcher({
      stage: 'picky', maxSize: 4, maxDelayMs: 20, maxQueue: 10, queueTimeoutMs: 1000, concurrency: 1, timeoutMs: 1000,
      run: async (items) => ({
        outcomes: items.map((it) => (first(it.v) < 0
          ? { ok: false as const, error: 'negative', code: 'invalid_input' }
          : { ok: true as const, items: [it] })),
        computeMs: 0,
        coldStart: false,
      }),
    });
    made.push(batcher);
    const [good, bad] = await Promise.all([batcher.submit(item(1)), batcher.submit(item(-1))]);
    expect(good.outcome.ok).toBe(true);
    expect(bad.outcome).toEqual({ ok: false, error: 'negative', code: 'invalid_input' });
    expect(good.batchId).toBe(bad.batchId);
  });
});

describe('Batcher: a batch whose run throws on one request\'s input', () => {
  /** A stage whose whole run fails, as ONNX Runtime does, when any item's value is negative. */
  function strict(opts: Partial<BatcherOptions> = {}, error = (v: number) => new StageError('embed', `index ${v} out of range`, 'stage_failed', { byRun: true })) {
    const batches: number[][] = [];
    const batcher = new Batcher({
      stage: 'embed', maxSize: 8, maxDelayMs: 20, maxQueue: 100, queueTimeoutMs: 5000, concurrency: 1, timeoutMs: 5000,
      run: async (items) => {
        const values = items.map((it) => first(it.v));
        batches.push(values);
        const bad = values.find((v) => v < 0);
        if (bad !== undefined) throw error(bad);
        return { outcomes: items.map((it) => ({ ok: true as const, items: [it] })), computeMs: 0, coldStart: false };
      },
      ...opts,
    });
    made.push(batcher);
    return { batcher, batches };
  }

  it('runs each request\'s items apart, so only the request with the bad input fails', async () => {
    const events: StageBatch[] = [];
    const { batcher, batches } = strict({ onBatch: (e) => events.push(e) });
    const [a, b, c] = [new RunCancel(), new RunCancel(), new RunCancel()];
    const settled = await Promise.allSettled([
      batcher.submit(item(1), a), batcher.submit(item(2), a),
      batcher.submit(item(-9), b), batcher.submit(item(3), b),
      batcher.submit(item(4), c), batcher.submit(item(5)),
    ]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect((settled[2] as PromiseRejectedResult).reason.message).toBe("stage 'embed' failed: index -9 out of range");
    // One shared batch, then one per request (the item of no request alone), each request's items together.
    expect(batches).toEqual([[1, 2, -9, 3, 4, 5], [1, 2], [-9, 3], [4], [5]]);
    // Every call is an execution in the statistics, the failed shared one included.
    expect(events.map((e) => [e.size, e.error])).toEqual([[6, 'stage_failed'], [2, undefined], [2, 'stage_failed'], [1, undefined], [1, undefined]]);
  });

  it('fails the whole batch as before when the failure is not the run\'s (a crash, a timeout) or the batch is one request\'s', async () => {
    const crash = strict({}, () => new StageError('embed', 'worker exited (SIGSEGV)'));
    const [a, b] = [new RunCancel(), new RunCancel()];
    const both = await Promise.allSettled([crash.batcher.submit(item(1), a), crash.batcher.submit(item(-1), b)]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(crash.batches).toHaveLength(1);
    const one = strict();
    const mine = new RunCancel();
    const own = await Promise.allSettled([one.batcher.submit(item(1), mine), one.batcher.submit(item(-1), mine)]);
    expect(own.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(one.batches).toHaveLength(1);
  });
});

describe('Batcher: a queue bound that follows the stage', () => {
  /** A stage that takes `ms` per call, one call at a time. */
  function slow(ms: number, queueFromServiceRate: boolean) {
    const run = async (items: Item[]): Promise<BatchResult> => {
      await new Promise((r) => setTimeout(r, ms));
      return { outcomes: items.map((it) => ({ ok: true as const, items: [it] })), computeMs: ms, coldStart: false };
    };
    const batcher = new Batcher({
      stage: 'slow', maxSize: 1, maxDelayMs: 0, maxQueue: 1024, queueFromServiceRate, queueTimeoutMs: 400,
      concurrency: 1, timeoutMs: 10_000, run,
    });
    made.push(batcher);
    return batcher;
  }
  const one = (i: number): Item => ({ v: { datatype: 'FP32', shape: [1], data: Float32Array.of(i) } });

  it('refuses at once what it could not serve within queue_timeout_ms, once it has measured its rate', async () => {
    const b = slow(40, true);
    // Learn the rate: three calls of 40 ms.
    for (let i = 0; i < 3; i++) await b.submit(one(i));
    // About 25 items/s and a 400 ms queue timeout: about 10 items fit; the rest are refused now, not timed out later.
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => b.submit(one(i)).then(() => 'ok', (e: unknown) => e as EnsembleError)));
    const refused = answers.filter((a): a is EnsembleError => a !== 'ok' && (a as EnsembleError).code === 'overloaded');
    expect(refused.length).toBeGreaterThan(30);
    for (const e of refused) expect(e.message).toMatch(/what it serves within queue_timeout_ms 400 at its measured [\d.]+ items\/s; max_queue 1024/);
    // What was admitted is served within (about) the queue timeout: at most the last one or two miss it on a busy machine.
    expect(answers.filter((a) => a !== 'ok' && (a as EnsembleError).code === 'timeout').length).toBeLessThanOrEqual(3);
    expect(answers.filter((a) => a === 'ok').length).toBeGreaterThanOrEqual(1);
    expect(b.admitLimit()).toBeLessThan(30);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('keeps the written max_queue as the bound when the manifest sets one: the overflow times out instead', async () => {
    const b = slow(40, false);
    for (let i = 0; i < 3; i++) await b.submit(one(i));
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => b.submit(one(i)).then(() => 'ok', (e: unknown) => (e as EnsembleError).code)));
    expect(answers).not.toContain('overloaded');
    expect(answers).toContain('timeout');
    expect(b.admitLimit()).toBe(1024);
  });
});

describe('Batcher: per-request inputs and fixed batch 1', () => {
  const withRate = (value: number, rate: bigint): Item => ({ ...item(value), sr: { datatype: 'INT64', shape: [], data: BigInt64Array.of(rate) } });

  it('batches apart items whose per-request values differ, together those that agree', async () => {
    const { batcher, batches } = doubling({ maxSize: 4, maxDelayMs: 5, perRequest: ['sr'] });
    const runs = await Promise.all([
      batcher.submit(withRate(1, 16000n)), batcher.submit(withRate(2, 8000n)),
      batcher.submit(withRate(3, 16000n)), batcher.submit(withRate(4, 8000n)),
    ]);
    expect(runs.map(resultOf)).toEqual([2, 4, 6, 8]);
    expect(batches.map((b) => b.slice().sort())).toEqual(expect.arrayContaining([[1, 3], [2, 4]]));
    expect(batches).toHaveLength(2);
  });

  it('never gives a max_size 1 stage more than one item, however many are queued', async () => {
    const { batcher, batches } = doubling({ maxSize: 1, maxDelayMs: 5, concurrency: 2 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => batcher.submit(item(i))));
    expect(batches).toHaveLength(6);
    expect(batches.every((b) => b.length === 1)).toBe(true);
  });
});

describe('Batcher: batch events', () => {
  it('tells its listener of each answered batch: size, summed queue wait, compute, failed items', async () => {
    const events: StageBatch[] = [];
    const run = async (items: Item[]): Promise<BatchResult> => ({
      // The item valued 2 fails on its own; its batch-mates succeed.
      outcomes: items.map((it) => (first(it.v) === 2 ? { ok: false as const, error: 'two', code: 'invalid_input' } : { ok: true as const, items: [it] })),
      computeMs: 7,
      coldStart: true,
      initMs: 3,
    });
    const batcher = new Batcher({
      stage: 's', maxSize: 3, maxDelayMs: 3_600_000, maxQueue: 100, queueTimeoutMs: 30_000,
      concurrency: 1, timeoutMs: 30_000, run, onBatch: (e) => events.push(e),
    });
    made.push(batcher);
    await Promise.all([1, 2, 3].map((v) => batcher.submit(item(v))));
    expect(events).toHaveLength(1);
    const [e] = events;
    expect(e).toMatchObject({ stage: 's', size: 3, computeMs: 7, coldStart: true, initMs: 3, failedItems: 1 });
    expect(e.error).toBeUndefined();
    expect(e.queueMs).toBeGreaterThanOrEqual(0);
    expect(e.callMs).toBeGreaterThanOrEqual(0);
  });

  it('reports a batch that failed whole with its error code and every item failed', async () => {
    const events: StageBatch[] = [];
    const batcher = new Batcher({
      stage: 's', maxSize: 2, maxDelayMs: 3_600_000, maxQueue: 100, queueTimeoutMs: 30_000,
      concurrency: 1, timeoutMs: 30_000, run: async () => { throw new TimeoutError('too slow'); }, onBatch: (e) => events.push(e),
    });
    made.push(batcher);
    const settled = await Promise.allSettled([batcher.submit(item(1)), batcher.submit(item(2))]);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(events).toEqual([expect.objectContaining({ size: 2, failedItems: 2, error: 'timeout', computeMs: 0 })]);
  });
});

describe('Batcher: priority (Triton schedule policy, lower value first)', () => {
  it('serves waiting priority-0 items before earlier lower-priority ones, which fill the rest of the batch', async () => {
    const hold = gate();
    const { batcher, batches } = doubling({ maxSize: 4, maxDelayMs: 0, concurrency: 1 }, hold.promise);
    // The one instance is busy: everything below queues.
    const busy = batcher.submit(item(0));
    await sleep(5);
    const jobs = [11, 12, 13, 14, 15].map((v) => batcher.submit(item(v), undefined, 1));
    const sync = [1, 2].map((v) => batcher.submit(item(v)));
    hold.open();
    await Promise.all([busy, ...jobs, ...sync]);
    expect(batches[0]).toEqual([0]);
    // Synchronous items first, though they came last; job items fill the room left in their batch.
    expect(batches[1]).toEqual([1, 2, 11, 12]);
    expect(batches[2]).toEqual([13, 14, 15]);
  });

  it('keeps arrival order when every item has the default priority', async () => {
    const hold = gate();
    const { batcher, batches } = doubling({ maxSize: 2, maxDelayMs: 0, concurrency: 1 }, hold.promise);
    const all = [batcher.submit(item(0))];
    await sleep(5);
    all.push(...[1, 2, 3].map((v) => batcher.submit(item(v), undefined, 0)));
    hold.open();
    await Promise.all(all);
    expect(batches).toEqual([[0], [1, 2], [3]]);
  });
});
