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
 * as Lambda's event source mapping does on AWS: up to `maxInFlight` items at
 * once, each deleted once it has its outcome, or hidden for its backoff when
 * it failed.
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
      if (dead) { await Promise.all(messages.map((m) => this.one(m, true))); continue; }
      // Not awaited: receive again while these run, until maxInFlight are in flight.
      for (const m of messages) void this.one(m, false);
    }
  }

  private async one(m: QueueMessage, dead: boolean): Promise<void> {
    const { queues } = this.consumer.deps;
    this.inFlight++;
    try {
      const verdict = dead ? await this.consumer.handleDeadLetter(m) : await this.consumer.handle(m);
      if (verdict === 'done') await queues.delete(this.pipeline, [m.receiptHandle], dead);
      else await queues.retryLater(this.pipeline, m);
    } catch (e) {
      // The message comes back after its visibility timeout; its outcome is written at most once whatever happens.
      this.opts.log?.(`job item failed to process (it will be retried): ${(e as Error).message}`);
    } finally {
      this.inFlight--;
      const w = this.wake;
      this.wake = undefined;
      w?.();
    }
  }
}
