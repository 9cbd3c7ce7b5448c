import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { JobQueues, QueueMessage } from '@ensemble/core/jobs/queue.js';
import type { SqsBatchResponse, SqsEvent } from '@ensemble/core/lambda/jobs.js';

export interface EventSourceOptions {
  queues: JobQueues;
  lambda: LambdaClient;
  pipeline: string;
  /** The consumer function, as the host knows it. */
  functionName: string;
  /** Messages per invocation (the mapping's batch size). */
  batchSize: number;
  /** Invocations in flight at once on the job queue (the mapping's maximum concurrency). */
  maxConcurrency: number;
  log?: (s: string) => void;
}

/**
 * A small Lambda event source mapping for one pipeline's job queue and its
 * dead-letter queue, as AWS runs one: receive a batch, invoke the consumer
 * with an SQS event, delete what it did not report in batchItemFailures, and
 * leave the failures (and every message of an invocation that failed) on the
 * queue, to come back after their visibility timeout.
 */
export class SqsEventSource {
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly o: EventSourceOptions) {}

  start(): this {
    for (let i = 0; i < this.o.maxConcurrency; i++) this.loops.push(this.loop(false));
    this.loops.push(this.loop(true));
    return this;
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await Promise.all(this.loops);
  }

  private async loop(dead: boolean): Promise<void> {
    const { queues, pipeline } = this.o;
    let arn: string | undefined;
    while (!this.stopped) {
      try {
        arn ??= await this.queueArn(dead);
        const messages = await queues.receive(pipeline, dead ? 10 : this.o.batchSize, { dead, waitSeconds: dead ? 5 : 1, signal: this.abort.signal });
        if (!messages.length) continue;
        const failed = await this.invoke(messages, arn);
        const done = messages.filter((m) => !failed.has(m.messageId));
        await queues.delete(pipeline, done.map((m) => m.receiptHandle), dead);
      } catch (e) {
        if (this.stopped) return;
        this.o.log?.(`job queue ${pipeline}${dead ? ' (dead letters)' : ''}: ${(e as Error).message}; polling again in 1 s`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  private async queueArn(dead: boolean): Promise<string> {
    const url = await this.o.queues.url(this.o.pipeline, dead);
    const out = await this.o.queues.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    return out.Attributes?.QueueArn ?? url;
  }

  /** The message ids to leave on the queue: the reported failures, or all of them when the invocation failed. */
  private async invoke(messages: QueueMessage[], arn: string): Promise<Set<string>> {
    const event: SqsEvent = {
      Records: messages.map((m) => ({ messageId: m.messageId, receiptHandle: m.receiptHandle, body: m.body, eventSourceARN: arn, attributes: { ApproximateReceiveCount: String(m.receiveCount) } })),
    };
    const all = new Set(messages.map((m) => m.messageId));
    const out = await this.o.lambda.send(new InvokeCommand({ FunctionName: this.o.functionName, Payload: new TextEncoder().encode(JSON.stringify(event)) }));
    const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
    if (out.FunctionError) {
      this.o.log?.(`job consumer ${this.o.functionName} failed (${out.FunctionError}): ${text.slice(0, 300)}; its ${messages.length} messages come back`);
      return all;
    }
    try {
      const res = JSON.parse(text) as SqsBatchResponse;
      return new Set((res.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      return all;
    }
  }
}
