import type { JobConsumer } from './consumer.js';
import type { QueueMessage } from './queue.js';
import { GroupCommit } from './group-commit.js';
import type { SyncActivity } from '../executor/activity.js';

/** How long a done message waits for others to share its DeleteMessageBatch. */
export const DELETE_DELAY_MS = 1_000;

export interface PollerOptions {
  /** Items of this pipeline in flight at once (inFlightFor: enough to keep every stage's instances busy). */
  maxInFlight: number;
  /**
   * While `activity` says synchronous requests are being answered, take new
   * items only below this many in flight (quietInFlightFor). Items already
   * running finish; none is stopped.
   */
  quietInFlight?: number;
  activity?: SyncActivity;
  /** Long-poll wait per receive; short enough that close() is quick. */
  waitSeconds?: number;
  log?: (s: string) => void;
}

/**
 * Feeds one pipeline's job queue (and its dead-letter queue) to a consumer,
 * as Lambda's event source mapping does on AWS: each receive is a batch
 * handed to the consumer, up to `maxInFlight` items at once. Unlike an
 * event source mapping, a message is done as soon as its own item is: its
 * place goes to the next message at once, so a batch's slowest item does not
 * leave the pipeline under-fed while it finishes; it is then deleted with
 * the others that end within DELETE_DELAY_MS (ten to a DeleteMessageBatch),
 * or hidden for its backoff. While the server answers synchronous requests
 * it keeps fewer items in flight (quietInFlight), so a job running beside
 * interactive traffic holds fewer places in the stages' queues and less of
 * the CPU; it takes up its full count again once they stop.
 */
export class QueuePoller {
  private inFlight = 0;
  /**
   * Received while the limit was lower than when the receive began: they
   * start as places free, or regardless once they have waited half the
   * visibility timeout (their item must end before the message shows again).
   */
  private readonly held: { message: QueueMessage; at: number }[] = [];
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private wake: (() => void) | undefined;
  private readonly deletes: GroupCommit<{ receipt: string; dead: boolean }>;
  /** How long a held message may wait before it starts whatever the limit. */
  private readonly holdLimitMs: number;

  constructor(private readonly consumer: JobConsumer, private readonly pipeline: string, private readonly opts: PollerOptions) {
    this.holdLimitMs = consumer.deps.queues.policy.visibilitySeconds * 500;
    this.deletes = new GroupCommit(async (group) => {
      const { queues } = this.consumer.deps;
      await Promise.all([false, true].map((dead) => {
        const receipts = group.filter((g) => g.dead === dead).map((g) => g.receipt);
        return receipts.length ? queues.delete(this.pipeline, receipts, dead) : undefined;
      }));
    }, { maxDelayMs: DELETE_DELAY_MS, maxSize: 10 });
  }

  /** Messages received whose items have no verdict yet (running, or waiting for their outcome write). */
  get active(): number { return this.inFlight; }

  start(): this {
    this.loops.push(this.loop(false), this.loop(true));
    return this;
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await Promise.all(this.loops);
    // Held messages never started: shown again at once, for whoever polls next.
    const held = this.held.splice(0).map((h) => h.message);
    await this.consumer.deps.queues.release(this.pipeline, held).catch((e: unknown) => this.opts.log?.(`job queue ${this.pipeline}: releasing ${held.length} messages failed (they show again after their visibility timeout): ${(e as Error).message}`));
    await Promise.all([this.deletes.flush(), this.consumer.flush()]);
  }

  private async loop(dead: boolean): Promise<void> {
    const { queues } = this.consumer.deps;
    while (!this.stopped) {
      const limit = this.limit();
      if (!dead && this.held.length > 0) {
        const now = performance.now();
        const take = Math.max(limit - this.inFlight, this.held.filter((h) => now - h.at >= this.holdLimitMs).length);
        if (take > 0) { void this.batch(this.held.splice(0, take).map((h) => h.message), false); continue; }
      }
      const room = dead ? 10 : limit - this.inFlight - this.held.length;
      // Receive once a quarter of the limit is free (at most a receive's 10): fewer, fuller receives.
      if (room < (dead ? 1 : Math.max(1, Math.min(10, Math.floor(limit / 4))))) { await this.idle(); continue; }
      let messages: QueueMessage[];
      try {
        messages = await queues.receive(this.pipeline, room, { dead, waitSeconds: dead ? 5 : this.opts.waitSeconds ?? 1, signal: this.abort.signal });
      } catch (e) {
        if (this.stopped) return;
        this.opts.log?.(`job queue ${this.pipeline}${dead ? ' (dead letters)' : ''}: ${(e as Error).message}; polling again in 1 s`);
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      if (!messages.length) continue;
      if (dead) { await this.batch(messages, true); continue; }
      // The limit may have dropped during the long poll: what is over it waits here (still hidden on the queue).
      const now = Math.max(0, this.limit() - this.inFlight);
      if (messages.length > now) {
        const at = performance.now();
        for (const message of messages.splice(now)) this.held.push({ message, at });
      }
      // Not awaited: receive again while this batch runs, as its items end, until maxInFlight items are in flight.
      if (messages.length) void this.batch(messages, false);
    }
  }

  /**
   * Until an item ends (its place frees), or the limit can rise (the
   * synchronous requests stopped), or a held message has waited its most.
   */
  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => { clearTimeout(timer); if (this.wake === done) this.wake = undefined; resolve(); };
      this.wake = done;
      const now = performance.now();
      const { activity } = this.opts;
      const until = Math.min(
        activity?.busy(now) ? activity.idleAt() : Infinity,
        this.held.length ? this.held[0].at + this.holdLimitMs : Infinity,
      );
      if (until !== Infinity) timer = setTimeout(done, Math.max(1, until - now));
    });
  }

  /** Items in flight allowed now: fewer while synchronous requests are answered. An item ending checks again. */
  private limit(): number {
    const { maxInFlight, quietInFlight, activity } = this.opts;
    return quietInFlight !== undefined && activity?.busy() ? Math.min(maxInFlight, Math.max(1, quietInFlight)) : maxInFlight;
  }

  /**
   * One receive's messages: each one's place is freed as soon as it has its
   * verdict (its outcome is written, or it is to be retried); then it is
   * deleted or hidden for its backoff. Until then it is still on the queue,
   * hidden for the visibility timeout, far longer than DELETE_DELAY_MS.
   */
  private async batch(messages: QueueMessage[], dead: boolean): Promise<void> {
    const { queues } = this.consumer.deps;
    this.inFlight += messages.length;
    const open = new Set(messages.map((_, i) => i));
    const release = (i: number) => {
      if (!open.delete(i)) return;
      this.inFlight--;
      const w = this.wake;
      this.wake = undefined;
      w?.();
    };
    const ends: Promise<void>[] = [];
    try {
      await this.consumer.handleEach(messages, { dead }, (i, verdict) => {
        const m = messages[i];
        const end = verdict === 'done' ? this.deletes.add({ receipt: m.receiptHandle, dead }) : queues.retryLater(this.pipeline, m);
        // A message not deleted comes back after its visibility timeout and finds its outcome: it is deleted then.
        ends.push(end.catch((e: unknown) => this.opts.log?.(`job queue ${this.pipeline}: ${verdict === 'done' ? 'delete' : 'backoff'} failed: ${(e as Error).message}`)));
        release(i);
      });
    } catch (e) {
      // The messages come back after their visibility timeout; an outcome is written at most once whatever happens.
      this.opts.log?.(`job items failed to process (they will be retried): ${(e as Error).message}`);
    } finally {
      await Promise.all(ends);
      for (const i of [...open]) release(i);
    }
  }
}
