import type { JobConsumer } from './consumer.js';
import type { QueueMessage } from './queue.js';

export interface PollerOptions {
  /** Items of this pipeline in flight at once: enough to fill its first stage's batches on every instance. */
  maxInFlight: number;
  /** Long-poll wait per receive; short enough that close() is quick. */
  waitSeconds?: number;
  log?: (s: string) => void;
}

/**
 * Feeds one pipeline's job queue (and its dead-letter queue) to a consumer,
 * as Lambda's event source mapping does on AWS: each receive is a batch
 * handed to the consumer whole, up to `maxInFlight` items at once; a batch's
 * messages are deleted together once they have their outcome, and the failed
 * ones are hidden for their backoff.
 */
export class QueuePoller {
  private inFlight = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly consumer: JobConsumer, private readonly pipeline: string, private readonly opts: PollerOptions) {}

  start(): this {
    this.loops.push(this.loop(false), this.loop(true));
    return this;
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.wake?.();
    await Promise.all(this.loops);
  }

  private async loop(dead: boolean): Promise<void> {
    const { queues } = this.consumer.deps;
    while (!this.stopped) {
      const room = dead ? 10 : this.opts.maxInFlight - this.inFlight;
      if (room <= 0) { await new Promise<void>((r) => { this.wake = r; }); continue; }
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
      // Not awaited: receive again while this batch runs, until maxInFlight items are in flight.
      void this.batch(messages, false);
    }
  }

  /** One receive's messages as one batch: deleted together once they have their outcome, the failed ones hidden for their backoff. */
  private async batch(messages: QueueMessage[], dead: boolean): Promise<void> {
    const { queues } = this.consumer.deps;
    this.inFlight += messages.length;
    try {
      const verdicts = await this.consumer.handleBatch(messages, { dead });
      const done = messages.filter((_, i) => verdicts[i] === 'done');
      await Promise.all([
        queues.delete(this.pipeline, done.map((m) => m.receiptHandle), dead),
        ...messages.filter((_, i) => verdicts[i] === 'retry').map((m) => queues.retryLater(this.pipeline, m)),
      ]);
    } catch (e) {
      // The messages come back after their visibility timeout; an outcome is written at most once whatever happens.
      this.opts.log?.(`job items failed to process (they will be retried): ${(e as Error).message}`);
    } finally {
      this.inFlight -= messages.length;
      const w = this.wake;
      this.wake = undefined;
      w?.();
    }
  }
}
