/** How long after a synchronous run ends the server still counts as answering requests. */
export const SYNC_HOLD_MS = 500;

/**
 * Synchronous runs in flight across a server's pipelines, for work that
 * should yield to them: a batch job's poller takes fewer items while a
 * request is being answered, or was within `holdMs` (a client sending one
 * request after another leaves gaps of a millisecond between them, and the
 * job should not refill in each).
 */
export class SyncActivity {
  private active = 0;
  private lastEnd = -Infinity;

  constructor(private readonly holdMs = SYNC_HOLD_MS) {}

  begin(): void { this.active++; }

  end(): void {
    this.active--;
    this.lastEnd = performance.now();
  }

  /** When busy() turns false if nothing else starts: Infinity while a run is in flight. */
  idleAt(): number {
    return this.active > 0 ? Infinity : this.lastEnd + this.holdMs;
  }

  /** A synchronous run is in flight, or one ended less than holdMs ago. */
  busy(now = performance.now()): boolean {
    return this.active > 0 || now < this.lastEnd + this.holdMs;
  }
}
