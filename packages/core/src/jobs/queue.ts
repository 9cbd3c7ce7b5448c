import {
  ChangeMessageVisibilityCommand, CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, GetQueueUrlCommand,
  ReceiveMessageCommand, SQSClient, SendMessageBatchCommand, type Message,
} from '@aws-sdk/client-sqs';
import { DEFAULT_JOBS_QUEUE_PREFIX, LOCAL_CREDENTIALS, type AwsSettings } from '../storage/config.js';
import { EnsembleError } from '../errors.js';
import type { ItemMessage } from './types.js';

/** A job queue's settings, the same locally and in the stacks. */
export interface QueuePolicy {
  /** Receives before a message moves to the dead-letter queue (the redrive policy's maxReceiveCount). */
  maxReceives: number;
  /** Seconds a received message stays hidden; a consumer that dies lets it come back after this. */
  visibilitySeconds: number;
  /** First retry delay; doubled per receive, up to maxBackoffSeconds. */
  backoffSeconds: number;
  maxBackoffSeconds: number;
}

export const DEFAULT_QUEUE_POLICY: QueuePolicy = { maxReceives: 3, visibilitySeconds: 120, backoffSeconds: 2, maxBackoffSeconds: 60 };

/** Seconds to hide a message that failed on its `receiveCount`-th receive: exponential backoff. */
export function backoffSeconds(policy: QueuePolicy, receiveCount: number): number {
  return Math.min(policy.maxBackoffSeconds, policy.backoffSeconds * 2 ** Math.max(0, receiveCount - 1));
}

export function queueName(prefix: string, pipeline: string): string { return `${prefix}${pipeline}`; }
export function deadLetterQueueName(prefix: string, pipeline: string): string { return `${prefix}${pipeline}-dlq`; }

export function makeSqsClient(s: AwsSettings): SQSClient {
  if (!s.sqsEndpoint) return new SQSClient({ region: s.region, credentials: s.credentials });
  return new SQSClient({ region: s.region, endpoint: s.sqsEndpoint, credentials: s.credentials ?? LOCAL_CREDENTIALS });
}

/** A received message, in the shape both ReceiveMessage and Lambda's SQS event give. */
export interface QueueMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  receiveCount: number;
}

/** The job queues of every pipeline: their URLs looked up once, messages sent ten to a call. */
export class JobQueues {
  private readonly urls = new Map<string, Promise<string>>();
  /** A pipeline's own maxReceives (its manifest's jobs.max_receives), where it has one. */
  private readonly receives = new Map<string, number>();
  readonly prefix: string;

  constructor(readonly sqs: SQSClient, prefix = DEFAULT_JOBS_QUEUE_PREFIX, readonly policy: QueuePolicy = DEFAULT_QUEUE_POLICY) {
    this.prefix = prefix;
  }

  url(pipeline: string, dead = false): Promise<string> {
    const name = dead ? deadLetterQueueName(this.prefix, pipeline) : queueName(this.prefix, pipeline);
    let u = this.urls.get(name);
    if (!u) {
      u = this.sqs.send(new GetQueueUrlCommand({ QueueName: name })).then((r) => r.QueueUrl!, (e: unknown) => {
        this.urls.delete(name);
        throw new EnsembleError(`no job queue '${name}' for pipeline '${pipeline}': ${(e as Error).message}`, 'not_ready', { cause: e });
      });
      this.urls.set(name, u);
    }
    return u;
  }

  /** Receives before a pipeline's messages move to its dead-letter queue. */
  maxReceives(pipeline: string): number {
    return this.receives.get(pipeline) ?? this.policy.maxReceives;
  }

  /** Record a pipeline's own maxReceives (from its manifest), as the stacks give its queue. */
  setMaxReceives(pipeline: string, n: number | undefined): void {
    if (n === undefined) this.receives.delete(pipeline); else this.receives.set(pipeline, n);
  }

  /** Create a pipeline's queue and its dead-letter queue with the redrive policy (local mode; on AWS the stacks do). */
  async ensure(pipeline: string): Promise<void> {
    const dlq = await this.sqs.send(new CreateQueueCommand({ QueueName: deadLetterQueueName(this.prefix, pipeline), Attributes: { MessageRetentionPeriod: '1209600' } }));
    const arn = (await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
    await this.sqs.send(new CreateQueueCommand({
      QueueName: queueName(this.prefix, pipeline),
      Attributes: {
        VisibilityTimeout: String(this.policy.visibilitySeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: String(this.maxReceives(pipeline)) }),
      },
    }));
  }

  async send(pipeline: string, messages: ItemMessage[]): Promise<void> {
    const url = await this.url(pipeline);
    for (const chunk of sendBatches(messages.map((m) => JSON.stringify(m)))) {
      let entries = chunk.map((body, j) => ({ Id: String(j), MessageBody: body }));
      for (let attempt = 0; entries.length; attempt++) {
        const out = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        if (!failed.size) break;
        if (attempt >= 5) throw new EnsembleError(`could not queue ${failed.size} job items: ${out.Failed?.[0]?.Message ?? 'refused'}`, 'overloaded');
        entries = entries.filter((e) => failed.has(e.Id));
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  async receive(pipeline: string, max: number, opts: { dead?: boolean; waitSeconds?: number; signal?: AbortSignal } = {}): Promise<QueueMessage[]> {
    const url = await this.url(pipeline, opts.dead);
    const out = await this.sqs.send(new ReceiveMessageCommand({
      QueueUrl: url, MaxNumberOfMessages: Math.max(1, Math.min(10, max)), WaitTimeSeconds: opts.waitSeconds ?? 1,
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }), { abortSignal: opts.signal });
    return (out.Messages ?? []).map(fromSqs);
  }

  /** Delete messages, ten to a DeleteMessageBatch, the calls side by side. */
  async delete(pipeline: string, receipts: string[], dead = false): Promise<void> {
    const url = await this.url(pipeline, dead);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < receipts.length; i += 10) {
      calls.push(this.sqs.send(new DeleteMessageBatchCommand({
        QueueUrl: url, Entries: receipts.slice(i, i + 10).map((r, j) => ({ Id: String(j), ReceiptHandle: r })),
      })));
    }
    await Promise.all(calls);
  }

  /** Show messages again at once (received, never started): the next receive may take them. */
  async release(pipeline: string, messages: QueueMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const url = await this.url(pipeline);
    await Promise.all(messages.map((m) => this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.receiptHandle, VisibilityTimeout: 0 }))));
  }

  /** Hide a failed message for its backoff, so its next try comes later (and, after maxReceives, the dead-letter queue). */
  async retryLater(pipeline: string, m: QueueMessage): Promise<void> {
    const url = await this.url(pipeline);
    await this.sqs.send(new ChangeMessageVisibilityCommand({
      QueueUrl: url, ReceiptHandle: m.receiptHandle, VisibilityTimeout: backoffSeconds(this.policy, m.receiveCount),
    }));
  }
}

/** SendMessageBatch takes 10 messages and 256 KiB in all: bodies grouped under both limits, in order. */
export function sendBatches(bodies: string[], maxBytes = 200 * 1024): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const b of bodies) {
    const n = Buffer.byteLength(b);
    if (cur.length && (cur.length === 10 || bytes + n > maxBytes)) { out.push(cur); cur = []; bytes = 0; }
    cur.push(b);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

function fromSqs(m: Message): QueueMessage {
  return { messageId: m.MessageId ?? '', receiptHandle: m.ReceiptHandle ?? '', body: m.Body ?? '', receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1) };
}
