import type { SpanContext } from '@opentelemetry/api';
import type { Item, Tensor } from '../tensor/types.js';
import type { BatchResult, ItemOutcome } from '../runtime/types.js';
import { ServiceRate } from './service-rate.js';
import { EnsembleError, OverloadedError, StageError, TimeoutError } from '../errors.js';
import type { BatchEvent } from '../observability/events.js';
import { abortReason, startDeadline, untilAborted, type CancelSignal } from '../deadline.js';

/** What one item learns about the batch it rode in. */
export interface ItemRun {
  outcome: ItemOutcome;
  /** Identity of the batch, so a request sharing one batch counts its compute once. */
  batchId: number;
  batchSize: number;
  queueWaitMs: number;
  computeMs: number;
  coldStart: boolean;
  initMs?: number;
  /** Wall time of the stage call, moving tensors to and from the stage included. */
  callMs: number;
  /** The batch's whole answer (shared by its items): the profile's fields (CPU, memory, transfer split). */
  result: BatchResult;
}

export interface BatcherOptions {
  stage: string;
  maxSize: number;
  maxDelayMs: number;
  maxQueue: number;
  /**
   * Admit only what the stage serves within queueTimeoutMs at its measured
   * rate (never less than a full batch per instance, never more than
   * maxQueue): an overloaded client gets a quick 429 instead of a 504 after
   * waiting out the queue timeout. Off when the manifest sets max_queue.
   */
  queueFromServiceRate?: boolean;
  queueTimeoutMs: number;
  /** Batches in flight at once (worker sessions, Lambda concurrency). */
  concurrency: number;
  /** Axis of the per-item tensors allowed to differ (padded later); other dims must match to share a batch. */
  padAxis?: number;
  /** Per-request inputs: fed to a call whole, so only items whose values agree share a batch. */
  perRequest?: readonly string[];
  /**
   * Items of any shapes share a batch: what runs it takes the items one at a
   * time (a function stage) or sorts them out itself. Default: only items
   * whose tensors agree in dtype and shape (but the pad axis) do.
   */
  anyShapes?: boolean;
  /** Whole-batch call timeout. */
  timeoutMs: number;
  /**
   * One stage call. `signal` is the batch's deadline (aborted with a 504
   * TimeoutError at `timeoutMs`): the only timer on the call, for the
   * transport to stop its work by. `traces` holds each item's span, as
   * submitted, for the call's span to link to (all undefined with tracing off).
   */
  run: (items: Item[], signal: AbortSignal, traces: readonly (SpanContext | undefined)[]) => Promise<BatchResult>;
  /** Told of every batch once it has its answer (statistics, metrics). */
  onBatch?: (e: StageBatch) => void;
}

/** A batch as the batcher saw it; the executor adds which pipeline it belongs to. */
export type StageBatch = Omit<BatchEvent, 'pipeline' | 'version'>;

interface Pending {
  item: Item;
  key: string;
  enqueuedAt: number;
  resolve: (r: ItemRun) => void;
  reject: (e: Error) => void;
  signal?: CancelSignal;
  /** Triton's schedule policy: lower leaves first; 0 is the default (synchronous requests). */
  priority: number;
  /** The item's span in this stage, for the batch's span to link to. */
  trace?: SpanContext;
  /** Chosen for a batch during a pump, before the queue is compacted. */
  taken?: boolean;
  /** Back in the queue after a batch with other requests' items failed (runApart): batched with its own request's items only. */
  apart?: boolean;
}

let nextBatchId = 1;
let nextApart = 1;

/** Per signal, the batchers holding items of it (their abort handlers). */
const holders = new WeakMap<CancelSignal, Set<(signal: CancelSignal) => void>>();

/**
 * The batchers to tell when `signal` aborts, listened for once per signal and
 * never unlistened: the listener goes with the signal (a request's), and a
 * batcher that no longer holds items of it has left the set.
 */
function holdersOf(signal: CancelSignal): Set<(signal: CancelSignal) => void> {
  let set = holders.get(signal);
  if (!set) {
    const created = new Set<(signal: CancelSignal) => void>();
    signal.addEventListener('abort', () => { for (const onAbort of [...created]) onAbort(signal); }, { once: true });
    holders.set(signal, created);
    set = created;
  }
  return set;
}

/**
 * Dynamic batcher for one stage, in the manner of Triton's dynamic batcher:
 * a batch leaves when it has `maxSize` compatible items or its oldest item has
 * waited `maxDelayMs`, and only while fewer than `concurrency` batches are in
 * flight — so under load, items queue up behind busy instances and leave in
 * bigger batches, merging concurrent requests and fan-out items alike.
 */
export class Batcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  /** Batches whose items have not had their answer (result or error) yet. */
  private unanswered = 0;
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() at which `timer` fires. */
  private timerAt = 0;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;
  private pumpQueued = false;
  private readonly drained: (() => void)[] = [];
  /**
   * Per signal, its items queued here. The signal's one abort listener is
   * shared by every batcher (see holdersOf): not one per item (an
   * EventTarget's add and remove are linear in its listeners, and a 1,000-item
   * request made them quadratic), nor an add and a remove per stage and request.
   */
  private readonly watched = new Map<CancelSignal, Set<Pending>>();
  private readonly onAbort = (signal: CancelSignal) => this.aborted(signal);

  private readonly rate = new ServiceRate();
  /** Queued items whose priority is not the default: while none are, the queue is served in arrival order as it stands. */
  private prioritized = 0;

  constructor(private readonly opts: BatcherOptions) {}

  get queued(): number { return this.queue.length; }
  get busy(): number { return this.inFlight; }
  /** A submit now would be refused as overloaded. */
  get full(): boolean { return this.queue.length >= this.admitLimit(); }

  /** Items the queue takes now: max_queue, or what the stage serves within its queue timeout. */
  admitLimit(): number {
    const { maxQueue, maxSize, concurrency, queueTimeoutMs, queueFromServiceRate } = this.opts;
    const perMs = this.rate.itemsPerMs;
    if (!queueFromServiceRate || perMs === undefined) return maxQueue;
    const servable = Math.floor(perMs * Math.max(1, concurrency) * queueTimeoutMs);
    return Math.min(maxQueue, Math.max(maxSize * Math.max(1, concurrency), servable));
  }

  /**
   * Queue one item. `priority` follows Triton's schedule policy (lower value,
   * higher priority; 0, the default, is what synchronous requests get): when
   * an instance frees, the most urgent items leave first and items of a
   * lower priority only fill the room left in their batch. `trace`: the
   * item's span in this stage, for the batch's span to link to.
   */
  submit(item: Item, signal?: CancelSignal, priority = 0, trace?: SpanContext): Promise<ItemRun> {
    const { stage, maxQueue } = this.opts;
    if (this.closed) return Promise.reject(new EnsembleError(`stage '${stage}' is shutting down`, 'not_ready'));
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const limit = this.admitLimit();
    if (this.queue.length >= limit) {
      const why = limit < maxQueue
        ? `what it serves within queue_timeout_ms ${this.opts.queueTimeoutMs} at its measured ${this.itemsPerSecond()} items/s; max_queue ${maxQueue}`
        : `max_queue ${maxQueue}`;
      return Promise.reject(new OverloadedError(`stage '${stage}' is overloaded: ${this.queue.length} items queued (${why})`, this.retryAfterSeconds()));
    }
    return new Promise<ItemRun>((resolve, reject) => {
      // A batch of one is compatible with itself: no key to build.
      const key = this.opts.maxSize === 1 || this.opts.anyShapes ? '' : shapeKey(item, this.opts.padAxis, this.opts.perRequest);
      const p: Pending = { item, key, enqueuedAt: performance.now(), resolve, reject, signal, priority, trace };
      if (priority !== 0) this.prioritized++;
      if (signal) this.watch(signal, p);
      this.queue.push(p);
      // At once when a batch may leave now: an instance is free, and either no delay is asked or
      // enough is queued for some group to be full. Otherwise nothing leaves before a timer does,
      // and one pump serves all the items a synchronous run submits (a request's rows) instead of
      // one walk of the queue per item.
      const { maxDelayMs, maxSize, concurrency } = this.opts;
      if (this.inFlight < concurrency && (maxDelayMs === 0 || this.queue.length >= maxSize)) this.pump();
      else this.schedulePump();
    });
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  private watch(signal: CancelSignal, p: Pending): void {
    let queued = this.watched.get(signal);
    if (!queued) {
      queued = new Set<Pending>();
      this.watched.set(signal, queued);
      holdersOf(signal).add(this.onAbort);
    }
    queued.add(p);
  }

  /** Drop every queued item of an aborted signal. */
  private aborted(signal: CancelSignal): void {
    const queued = this.watched.get(signal);
    if (!queued) return;
    this.watched.delete(signal);
    this.queue = this.queue.filter((p) => !queued.has(p));
    for (const p of queued) this.dequeued(p);
    const reason = abortReason(signal);
    for (const p of queued) p.reject(reason);
  }

  /** Stop taking work; resolves once queued and in-flight batches have finished. */
  close(): Promise<void> {
    this.closed = true;
    this.pump();
    if (this.queue.length === 0 && this.unanswered === 0) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }

  private itemsPerSecond(): string {
    const perMs = this.rate.itemsPerMs ?? 0;
    const v = perMs * Math.max(1, this.opts.concurrency) * 1000;
    return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
  }

  private retryAfterSeconds(): number {
    const perMs = this.rate.itemsPerMs;
    // How long the queue takes to drain at the measured rate, at least a second.
    if (perMs !== undefined) return Math.max(1, Math.ceil(this.queue.length / (perMs * Math.max(1, this.opts.concurrency)) / 1000));
    // Not measured yet: one max-delay window per queued batch.
    const batches = Math.ceil(this.queue.length / this.opts.maxSize / Math.max(1, this.opts.concurrency));
    return Math.max(1, Math.ceil((batches * Math.max(this.opts.maxDelayMs, 50)) / 1000));
  }

  private pump(turnEnd = false): void {
    this.expire();
    const { wakeAt: delayWake, batches } = this.select(turnEnd);
    let wakeAt = delayWake;
    for (const batch of batches) this.dispatch(batch);
    // Queued items must time out even while every instance stays busy and no submit wakes the queue;
    // the queue is in arrival order, so its head expires first.
    if (this.queue.length > 0) wakeAt = Math.min(wakeAt, this.queue[0].enqueuedAt + this.opts.queueTimeoutMs);
    this.wakeAt(wakeAt);
    // Drained once every item has its answer; a call that outlived its timeout is the transport's
    // to stop (a worker is killed), and waiting for it could hold a shutdown forever.
    if (this.closed && this.queue.length === 0 && this.unanswered === 0) {
      for (const r of this.drained.splice(0)) r();
    }
  }

  /**
   * Pump again at `at` (performance.now() time; Infinity: no need). A pump is
   * made per submit and per answered batch: a wake-up already set for no
   * later than `at` is kept (one that comes early pumps, and sets the next),
   * not cleared and made again each time.
   */
  private wakeAt(at: number): void {
    if (at === Infinity) {
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      if (this.immediate) { clearImmediate(this.immediate); this.immediate = undefined; }
      return;
    }
    const now = performance.now();
    const left = at - now;
    // Node's timers count whole milliseconds: a delay under 1 ms is checked again at the end of each
    // event-loop turn instead, so what arrives in the same turn still shares the batch.
    if (this.opts.maxDelayMs < 1 && left < 1) {
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      this.immediate ??= setImmediate(() => { this.immediate = undefined; this.pump(true); });
      return;
    }
    if (this.immediate) { clearImmediate(this.immediate); this.immediate = undefined; }
    const delay = Math.max(0, left) + 0.5;
    if (this.timer && this.timerAt <= now + delay) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = now + delay;
    this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, delay);
  }

  /**
   * The batches that may leave now, taken off the queue, and when the next
   * group's delay ends. Items are grouped by shape key so that a group that
   * is full leaves at once whatever waits ahead of it (no head-of-line
   * blocking across shapes). One pass in arrival order: a group's oldest
   * remaining item is met before any younger item, so eligible groups go
   * oldest first, and a group found waiting stays waiting for this pass
   * (what is behind its head is younger and fewer).
   */
  private select(turnEnd: boolean): { batches: Pending[][]; wakeAt: number } {
    const { maxSize, maxDelayMs, concurrency } = this.opts;
    const batches: Pending[][] = [];
    let wakeAt = Infinity;
    if (this.inFlight >= concurrency || this.queue.length === 0) return { batches, wakeAt };
    // Most urgent first (a stable sort keeps arrival order within a priority), so groups fill with
    // synchronous items before job items, and the group of the most urgent waiting item leaves first.
    const order = this.prioritized > 0 ? [...this.queue].sort((a, b) => a.priority - b.priority) : this.queue;
    const groups = new Map<string, { items: Pending[]; next: number; waiting: boolean }>();
    for (const p of order) {
      const g = groups.get(p.key);
      if (g) g.items.push(p);
      else groups.set(p.key, { items: [p], next: 0, waiting: false });
    }
    const now = performance.now();
    // A sub-millisecond delay ends only at the end of an event-loop turn: items submitted in one
    // synchronous run (the rows of a request) never part because that run took a while.
    const turnBound = maxDelayMs > 0 && maxDelayMs < 1 && !turnEnd;
    let taken = 0;
    for (const p of order) {
      if (this.inFlight + batches.length >= concurrency) break;
      const g = groups.get(p.key)!;
      if (g.waiting || g.items[g.next] !== p) continue;
      const full = g.items.length - g.next >= maxSize;
      const due = !turnBound && now - p.enqueuedAt >= maxDelayMs;
      if (!full && !due && !this.closed) {
        g.waiting = true;
        wakeAt = Math.min(wakeAt, p.enqueuedAt + maxDelayMs);
        continue;
      }
      const batch = g.items.slice(g.next, g.next + maxSize);
      g.next += batch.length;
      for (const b of batch) { b.taken = true; this.dequeued(b); }
      taken += batch.length;
      batches.push(batch);
    }
    if (taken) this.queue = this.queue.filter((p) => !p.taken);
    return { batches, wakeAt };
  }

  /** Fail items that have waited past the queue timeout. */
  private expire(): void {
    const now = performance.now();
    // The queue is in arrival order: the expired items are a prefix of it.
    let n = 0;
    while (n < this.queue.length && now - this.queue[n].enqueuedAt > this.opts.queueTimeoutMs) n++;
    for (const p of this.queue.splice(0, n)) {
      this.detach(p);
      this.dequeued(p);
      p.reject(new TimeoutError(
        `stage '${this.opts.stage}': item waited ${Math.round(now - p.enqueuedAt)} ms in the queue (queue_timeout_ms ${this.opts.queueTimeoutMs})`));
    }
  }

  private dequeued(p: Pending): void {
    if (p.priority !== 0) this.prioritized--;
  }

  private detach(p: Pending): void {
    if (!p.signal) return;
    const queued = this.watched.get(p.signal);
    if (!queued) return;
    queued.delete(p);
    if (queued.size === 0) {
      holders.get(p.signal)?.delete(this.onAbort);
      this.watched.delete(p.signal);
    }
  }

  private dispatch(batch: Pending[]): void {
    this.inFlight++;
    this.unanswered++;
    const start = performance.now();
    const batchId = nextBatchId++;
    for (const p of batch) this.detach(p);
    const { stage, timeoutMs } = this.opts;
    // The batch's one deadline: the transport stops what it can (kills a worker, drops an Invoke)
    // when the signal aborts, and the items get their 504 then whether or not it could.
    const deadline = startDeadline(timeoutMs, () => new TimeoutError(`stage '${stage}' timed out after ${timeoutMs} ms`));
    let running: Promise<BatchResult>;
    try {
      running = this.opts.run(batch.map((p) => p.item), deadline.signal, batch.map((p) => p.trace));
    } catch (e) {
      running = Promise.reject(e);
    }
    // A call that timed out still holds its instance until it really ends (an in-process ONNX
    // session cannot be interrupted): only then may another batch take the slot.
    running.then(() => undefined, () => undefined).then(() => {
      deadline.cancel();
      this.inFlight--;
      this.pump();
    });
    untilAborted(running, deadline.signal)
      .then((result) => {
        if (result.outcomes.length !== batch.length) {
          throw new StageError(stage, `returned ${result.outcomes.length} outcomes for a batch of ${batch.length}`);
        }
        const callMs = performance.now() - start;
        this.rate.observe(batch.length, callMs);
        if (this.opts.onBatch) this.report(batch, start, callMs, result);
        batch.forEach((p, i) => p.resolve({
          outcome: result.outcomes[i],
          batchId,
          batchSize: batch.length,
          queueWaitMs: start - p.enqueuedAt,
          computeMs: result.computeMs,
          coldStart: result.coldStart,
          initMs: result.initMs,
          callMs,
          result,
        }));
      })
      .catch((err: unknown) => {
        const e = err instanceof EnsembleError ? err : new StageError(stage, err instanceof Error ? err.message : String(err));
        // The failed call is an execution either way (its time, its Invoke): counted before its items run apart.
        if (this.opts.onBatch) this.report(batch, start, performance.now() - start, undefined, e.code);
        if (this.runApart(batch, e)) return;
        for (const p of batch) p.reject(e);
      })
      .finally(() => {
        this.unanswered--;
        this.pump();
      });
  }

  /**
   * A batch whose run threw on its inputs (StageError.byRun), holding items
   * of more than one request: one request's bad input (a token id past the
   * embedding table) must not fail the others it shared the batch with.
   * Each request's items go back into the queue at their place by arrival
   * (ahead of what came after them: the queue stays oldest first, as the
   * queue timeout reads it) as a batch of their own, never to be split
   * again or joined by others, so only the request whose input the model
   * refuses gets the error. Items of no request (no signal) each go alone.
   * False (nothing done) for any other failure, or a batch of one request.
   */
  private runApart(batch: Pending[], e: EnsembleError): boolean {
    if (!(e instanceof StageError) || !e.byRun || batch.length < 2 || batch.some((p) => p.apart)) return false;
    const groups = new Map<CancelSignal | Pending, Pending[]>();
    for (const p of batch) {
      const by = p.signal ?? p;
      const g = groups.get(by);
      if (g) g.push(p);
      else groups.set(by, [p]);
    }
    if (groups.size < 2) return false;
    const again: Pending[] = [];
    for (const g of groups.values()) {
      const key = `\u0000apart:${nextApart++}`;
      for (const p of g) {
        if (p.signal?.aborted) { p.reject(abortReason(p.signal)); continue; }
        const q: Pending = { ...p, key, apart: true, taken: false };
        if (q.priority !== 0) this.prioritized++;
        if (q.signal) this.watch(q.signal, q);
        again.push(q);
      }
    }
    again.sort((x, y) => x.enqueuedAt - y.enqueuedAt);
    this.queue = mergeByArrival(again, this.queue);
    return true;
  }

  /** Tells the listener of one answered batch; kept out of dispatch so the batch path pays nothing when no one listens. */
  private report(batch: Pending[], start: number, callMs: number, result?: BatchResult, error?: string): void {
    let queueMs = 0;
    for (const p of batch) queueMs += start - p.enqueuedAt;
    let failedItems = batch.length;
    if (result) {
      failedItems = 0;
      for (const o of result.outcomes) if (!o.ok) failedItems++;
    }
    // Function stages run inside the call beside the model report their own part: the stage's is the rest.
    const inside = result?.colocated ?? [];
    let computeMs = result?.computeMs ?? 0;
    for (const c of inside) { computeMs -= c.computeMs; failedItems -= c.failedItems; }
    const e: StageBatch = {
      stage: this.opts.stage, size: batch.length, queueMs, callMs,
      computeMs: Math.max(0, computeMs), coldStart: result?.coldStart ?? false, initMs: result?.initMs,
      failedItems: Math.max(0, failedItems), error,
    };
    if (result) {
      e.transferMs = transferMs(callMs, result);
      if (result.transfer) e.transfer = result.transfer;
      if (result.hops) e.hops = result.hops;
      if (result.cpuMs !== undefined) e.cpuMs = result.cpuMs;
      if (result.peakRssBytes !== undefined) e.peakRssBytes = result.peakRssBytes;
      if (result.coldStartSplit) e.coldStartSplit = result.coldStartSplit;
      if (result.lambda) e.lambda = result.lambda;
    }
    this.opts.onBatch!(e);
    // Function stages that ran inside this call, beside the model: each a batch of its own to whoever counts them.
    for (const c of inside) {
      this.opts.onBatch!({
        stage: c.stage, size: c.items, queueMs: 0, callMs: c.computeMs, computeMs: c.computeMs, coldStart: false, failedItems: c.failedItems,
        within: this.opts.stage,
      });
    }
  }
}

/**
 * Time a call spent moving tensors to and from the stage: its wall time less
 * the stage's own compute, and less a cold start the call itself paid for (a
 * stage function's init inside the Invoke: the Lambda transport's split says
 * so by leaving it out of its parts).
 */
export function transferMs(callMs: number, result: BatchResult): number {
  const t = result.transfer;
  if (t && t.invokeMs !== undefined) {
    return (t.serializeMs ?? 0) + (t.ipcMs ?? 0) + t.invokeMs + (t.spillUpMs ?? 0) + (t.spillDownMs ?? 0);
  }
  return Math.max(0, callMs - result.computeMs);
}

/**
 * Items batch together only when their tensors agree in dtype and shape
 * (except the pad axis), and in value for the per-request inputs.
 */
export function shapeKey(item: Item, padAxis?: number, perRequest?: readonly string[]): string {
  const names = Object.keys(item);
  // Made per submitted item: no sort, map and join for the common item of one input.
  const key = names.length === 1 ? tensorKey(names[0], item[names[0]], padAxis)
    : names.sort().map((k) => tensorKey(k, item[k], padAxis)).join(';');
  if (!perRequest?.length) return key;
  return `${key}|${perRequest.map((k) => valueKey(item[k])).join('|')}`;
}

function tensorKey(name: string, t: Tensor, padAxis: number | undefined): string {
  let dims = '';
  for (let i = 0; i < t.shape.length; i++) dims += `${i ? ',' : ''}${i === padAxis ? '*' : t.shape[i]}`;
  return `${name}:${t.datatype}[${dims}]`;
}

function valueKey(t: Tensor | undefined): string {
  if (!t) return '';
  if (Array.isArray(t.data)) return t.data.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')).join(',');
  return Array.from(t.data as ArrayLike<number | bigint>, String).join(',');
}

/** Two queues, each oldest first, as one oldest first (on a tie, `a`'s item first). */
function mergeByArrival(a: Pending[], b: Pending[]): Pending[] {
  const out: Pending[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i].enqueuedAt <= b[j].enqueuedAt ? a[i++] : b[j++]);
  while (i < a.length) out.push(a[i++]);
  while (j < b.length) out.push(b[j++]);
  return out;
}
