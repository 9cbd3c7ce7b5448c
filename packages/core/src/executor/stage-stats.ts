import type { ItemRun } from '../batching/batcher.js';
import type { StageRunRecord } from '../storage/types.js';

/** Accumulates one request's view of one stage for its run record. */
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

  constructor(readonly stage: string) {}

  /** An item of this request was handed to the stage's batcher. */
  submitted(): void { this.submittedItems++; }

  /** An item the stage's condition skipped. */
  skipped(): void { this.skippedItems++; }

  /** Items handed to the stage that have no result yet (queued or running). */
  get unfinished(): number { return this.error === undefined ? this.submittedItems - this.items : 0; }

  record(run: ItemRun): void {
    this.items++;
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

  failed(message: string): void { this.error ??= message; }

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
    if (this.initMs !== undefined) r.initMs = round(this.initMs);
    if (this.skippedItems > 0) r.skipped = this.skippedItems;
    if (this.error !== undefined) r.error = this.error;
    return r;
  }
}

function round(ms: number): number { return Math.round(ms * 100) / 100; }
