import { transferMs, type ItemRun } from '../batching/batcher.js';
import type { StageRunRecord } from '../storage/types.js';

/**
 * Accumulates one request's view of one stage for its run record. Times are
 * performance.now() values; the record gives them as offsets from `origin`,
 * the request's start, so a waterfall can place the stage on the run's axis.
 */
export class StageStats {
  private readonly batchIds = new Set<number>();
  private readonly sizes: number[] = [];
  private items = 0;
  private submittedItems = 0;
  private queueWaitMs = 0;
  private computeMs = 0;
  private coldStart = false;
  private initMs: number | undefined;
  private error: string | undefined;
  private skippedItems = 0;
  private transferMs = 0;
  private transfer: NonNullable<StageRunRecord['transfer']> | undefined;
  private hops: NonNullable<StageRunRecord['hops']> | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private peakRss: number | undefined;
  private cpuMs: number | undefined;
  private split: StageRunRecord['coldStartSplit'];
  private lambda: StageRunRecord['lambda'];
  /** When this request's first item entered the stage's queue, and when its last one came back (or failed). */
  private firstQueuedAt: number | undefined;
  private lastDoneAt: number | undefined;

  constructor(readonly stage: string, private readonly origin: number = performance.now()) {}

  /** An item of this request was handed to the stage's batcher, with its tensors' bytes. */
  submitted(bytes = 0, now: number = performance.now()): void {
    this.submittedItems++;
    this.bytesIn += bytes;
    this.firstQueuedAt ??= now;
  }

  /** Tensor bytes the stage gave back for an item of this request. */
  answered(bytes: number): void { this.bytesOut += bytes; }

  /** An item the stage's condition skipped. */
  skipped(): void { this.skippedItems++; }

  /** Items handed to the stage that have no result yet (queued or running). */
  get unfinished(): number { return this.error === undefined ? this.submittedItems - this.items : 0; }

  record(run: ItemRun, now: number = performance.now()): void {
    this.items++;
    this.lastDoneAt = now;
    this.queueWaitMs = Math.max(this.queueWaitMs, run.queueWaitMs);
    const r = run.result;
    // What a batch cost in CPU and Lambda billing is shared by its items: this request pays its items' part.
    if (r.cpuMs !== undefined) this.cpuMs = (this.cpuMs ?? 0) + r.cpuMs / run.batchSize;
    if (r.lambda) {
      const l = (this.lambda ??= { gbSeconds: 0, invocations: 0, arch: r.lambda.arch, memoryMb: r.lambda.memoryMb });
      l.gbSeconds += (r.lambda.billedMs / 1000) * (r.lambda.memoryMb / 1024) / run.batchSize;
      l.invocations += 1 / run.batchSize;
    }
    if (this.batchIds.has(run.batchId)) return;
    // A batch this request shared counts once, however many of its items rode in it.
    this.batchIds.add(run.batchId);
    this.sizes.push(run.batchSize);
    this.computeMs += run.computeMs;
    this.transferMs += transferMs(run.callMs, r);
    if (r.transfer) {
      const t = (this.transfer ??= {});
      for (const [k, v] of Object.entries(r.transfer) as [keyof typeof t, number | undefined][]) if (v !== undefined) t[k] = (t[k] ?? 0) + v;
    }
    if (r.hops) {
      const h = (this.hops ??= { invokes: 0, requestBytes: 0, responseBytes: 0, spillUpBytes: 0, spillDownBytes: 0, spillUpMs: 0, spillDownMs: 0, roundTripMs: 0, functionMs: 0 });
      for (const k of Object.keys(h) as (keyof typeof h)[]) h[k] += r.hops[k] ?? 0;
    }
    if (r.peakRssBytes !== undefined) this.peakRss = Math.max(this.peakRss ?? 0, r.peakRssBytes);
    if (run.coldStart) {
      this.coldStart = true;
      this.initMs = run.initMs;
      if (r.coldStartSplit) this.split = r.coldStartSplit;
    }
  }

  failed(message: string, now: number = performance.now()): void {
    this.error ??= message;
    // The stage's part of the run ends when it failed, unless an item already came back later.
    if (this.firstQueuedAt !== undefined) this.lastDoneAt = Math.max(this.lastDoneAt ?? now, now);
  }

  toRecord(): StageRunRecord {
    const r: StageRunRecord = {
      stage: this.stage,
      batches: this.batchIds.size,
      batchSizes: [...this.sizes],
      items: this.items,
      queueWaitMs: round(this.queueWaitMs),
      computeMs: round(this.computeMs),
      coldStart: this.coldStart,
    };
    if (this.firstQueuedAt !== undefined) {
      r.startMs = round(this.firstQueuedAt - this.origin);
      if (this.lastDoneAt !== undefined) r.endMs = round(this.lastDoneAt - this.origin);
    }
    if (this.initMs !== undefined) r.initMs = round(this.initMs);
    if (this.skippedItems > 0) r.skipped = this.skippedItems;
    if (this.error !== undefined) r.error = this.error;
    if (this.batchIds.size > 0) r.transferMs = round(this.transferMs);
    if (this.transfer) r.transfer = Object.fromEntries(Object.entries(this.transfer).map(([k, v]) => [k, round(v)]));
    if (this.hops) r.hops = Object.fromEntries(Object.entries(this.hops).map(([k, v]) => [k, round(v)])) as NonNullable<StageRunRecord['hops']>;
    if (this.submittedItems > 0) { r.bytesIn = this.bytesIn; r.bytesOut = this.bytesOut; }
    if (this.peakRss !== undefined) r.peakRssBytes = this.peakRss;
    if (this.cpuMs !== undefined) r.cpuMs = round(this.cpuMs);
    if (this.split) {
      const split: NonNullable<StageRunRecord['coldStartSplit']> = { fetchMs: round(this.split.fetchMs), hashMs: round(this.split.hashMs), sessionMs: round(this.split.sessionMs) };
      // A stage function's own parts, when its build sends them.
      if (this.split.startMs !== undefined) split.startMs = round(this.split.startMs);
      if (this.split.firstRunMs !== undefined) split.firstRunMs = round(this.split.firstRunMs);
      r.coldStartSplit = split;
    }
    if (this.lambda) r.lambda = { ...this.lambda, gbSeconds: Math.round(this.lambda.gbSeconds * 1e6) / 1e6, invocations: Math.round(this.lambda.invocations * 1e4) / 1e4 };
    return r;
  }
}

function round(ms: number): number { return Math.round(ms * 100) / 100; }
