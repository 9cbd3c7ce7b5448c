/**
 * How fast one instance of a stage serves items, from the batches it has
 * run: an exponentially weighted average of items per millisecond, so a
 * stage's queue can admit what it will serve before its queue timeout
 * (Little's law: items waiting = arrival rate x wait).
 */
export class ServiceRate {
  private rate: number | undefined;

  /** Weight of the newest batch. */
  constructor(private readonly alpha = 0.2) {}

  /** A batch of `items` took `ms` from leaving the queue to its answer. */
  observe(items: number, ms: number): void {
    if (!(ms > 0) || items <= 0) return;
    const r = items / ms;
    this.rate = this.rate === undefined ? r : this.alpha * r + (1 - this.alpha) * this.rate;
  }

  /** Items per millisecond of one instance; undefined until a batch has been seen. */
  get itemsPerMs(): number | undefined { return this.rate; }
}
