export interface GroupCommitOptions {
  /** How long the first piece of a group waits for others (0: until the next turn of the event loop). */
  maxDelayMs?: number;
  /** Pieces per write; a group this big is written at once. */
  maxSize?: number;
}

/**
 * Group commit: work handed in one piece at a time, written a group at a
 * time. A group is written `maxDelayMs` after its first piece came, or as soon
 * as it holds `maxSize`; while a write is under way, what comes in goes out
 * with the next one, with no further wait. One write per group, however the
 * pieces trickle in.
 */
export class GroupCommit<T> {
  private pending: { value: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private writing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly maxDelayMs: number;
  private readonly maxSize: number;

  /** `write` gets each group in the order its pieces came; a failure fails every piece of that group. */
  constructor(private readonly write: (group: T[]) => Promise<void>, opts: GroupCommitOptions = {}) {
    this.maxDelayMs = opts.maxDelayMs ?? 0;
    this.maxSize = Math.max(1, opts.maxSize ?? Number.POSITIVE_INFINITY);
  }

  /** Pieces waiting for their write. */
  get size(): number { return this.pending.length; }

  /** Resolves once the group holding `value` is written. */
  add(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ value, resolve, reject });
      if (this.writing) return;
      if (this.pending.length >= this.maxSize) this.startNow();
      else this.timer ??= setTimeout(() => this.startNow(), this.maxDelayMs);
    });
  }

  /** Write what is waiting now, and resolve once nothing is (a Lambda handler before it returns, a poller closing). */
  async flush(): Promise<void> {
    while (this.writing || this.pending.length) {
      if (!this.writing) this.startNow();
      await this.writing;
    }
  }

  private startNow(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.writing) return;
    this.writing = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const group = this.pending.splice(0, this.maxSize);
        try {
          await this.write(group.map((g) => g.value));
          for (const g of group) g.resolve();
        } catch (e) {
          for (const g of group) g.reject(e);
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}
