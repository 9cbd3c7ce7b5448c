import type { ItemRun } from '../batching/batcher.js';
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
  /** When this request's first item entered the stage's queue, and when its last one came back (or failed). */
  private firstQueuedAt: number | undefined;
  private lastDoneAt: number | undefined;

  constructor(readonly stage: string, private readonly origin: number = performance.now()) {}

  /** An item of this request was handed to the stage's batcher. */
  submitted(now: number = performance.now()): void {
    this.submittedItems++;
    this.firstQueuedAt ??= now;
  }

  /** An item the stage's condition skipped. */
  skipped(): void { this.skippedItems++; }

  /** Items handed to the stage that have no result yet (queued or running). */
  get unfinished(): number { return this.error === undefined ? this.submittedItems - this.items : 0; }

  record(run: ItemRun, now: number = performance.now()): void {
    this.items++;
    this.lastDoneAt = now;
    this.queueWaitMs = Math.max(this.queueWaitMs, run.queueWaitMs);
    if (this.batchIds.has(run.batchId)) return;
    // A batch this request shared counts once, however many of its items rode in it.
    this.batchIds.add(run.batchId);
    this.sizes.push(run.batchSize);
    this.computeMs += run.computeMs;
    if (run.coldStart) {
      this.coldStart = true;
      this.initMs = run.initMs;
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
    return r;
  }
}

function round(ms: number): number { return Math.round(ms * 100) / 100; }
