import path from 'node:path';
import { findManifests, loadManifest } from '../manifest/load.js';
import { PipelineRegistry } from '../pipelines/registry.js';
import { DynamoRunStore } from '../storage/dynamo-runs.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv, type Env } from '../storage/config.js';
import { Jobs } from '../jobs/service.js';
import type { MessageVerdict } from '../jobs/consumer.js';
import { makeSqsClient } from '../jobs/queue.js';
import { httpStatus } from '../http/errors.js';
import { LambdaTransport } from './transport.js';
import { PayloadSpill } from './spill.js';
import { ENV } from './environment.js';

/** The part of Lambda's SQS event the consumer reads. */
export interface SqsEvent {
  Records: { messageId: string; receiptHandle: string; body: string; eventSourceARN?: string; attributes?: { ApproximateReceiveCount?: string } }[];
}

/** ReportBatchItemFailures: the messages to leave on the queue (retried after their backoff). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * The job consumer as a Lambda handler for the event source mapping on a
 * pipeline's job queue and on its dead-letter queue: the same JobConsumer
 * `ensemble serve` polls with, the stages reached through the Lambda
 * transport, run records flushed to DynamoDB before the handler returns.
 */
export async function createJobsHandler(opts: { env?: Env; log?: (s: string) => void } = {}): Promise<(event: SqsEvent) => Promise<SqsBatchResponse>> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((s: string) => console.error(`[ensemble] ${s}`));
  const root = env.LAMBDA_TASK_ROOT ?? process.cwd();
  const listed = (env[ENV.manifests] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const files = listed.length ? listed.map((f) => path.resolve(root, f)) : await findManifests(path.resolve(root, 'models'));
  const settings = settingsFromEnv(env);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  const runs = new DynamoRunStore({ dynamo, table: settings.runsTable, onError: (e) => log(`run record write failed (will retry): ${(e as Error).message}`) });
  const transport = new LambdaTransport({ env, spill: new PayloadSpill(s3, settings.bucket), log });
  const registry = new PipelineRegistry(transport);
  for (const f of files) {
    try { await registry.add(await loadManifest(f)); } catch (e) { log(`${f}: not served: ${(e as Error).message}`); }
  }
  const jobs = new Jobs({ settings, s3, dynamo, sqs: makeSqsClient(settings), registry, runs, statusOf: httpStatus, transport: transport.kind, log });
  // What the stacks gave each queue's redrive policy, for the message a dead letter's outcome carries.
  for (const name of registry.names()) {
    try { jobs.queues.setMaxReceives(name, registry.manifest(name).jobs?.maxReceives); } catch { /* not served: logged above */ }
  }

  return async (event) => {
    const failures: { itemIdentifier: string }[] = [];
    // One event comes from one queue; its records are one batch for the consumer (counters moved once).
    const messages = event.Records.map((r) => ({ messageId: r.messageId, receiptHandle: r.receiptHandle, body: r.body, receiveCount: Number(r.attributes?.ApproximateReceiveCount ?? 1) }));
    const dead = event.Records.map((r) => r.eventSourceARN?.endsWith('-dlq') ?? false);
    await Promise.all([true, false].map(async (d) => {
      const batch = messages.filter((_, i) => dead[i] === d);
      if (!batch.length) return;
      let verdicts: MessageVerdict[];
      try {
        verdicts = await jobs.consumer.handleBatch(batch, { dead: d });
      } catch (e) {
        log(`job items failed to process (they will be retried): ${(e as Error).message}`);
        for (const m of batch) failures.push({ itemIdentifier: m.messageId });
        return;
      }
      await Promise.all(batch.map(async (m, i) => {
        if (verdicts[i] !== 'retry') return;
        const pipeline = (JSON.parse(m.body) as { pipeline: string }).pipeline;
        await jobs.queues.retryLater(pipeline, m).catch((e: unknown) => log(`backoff not set: ${(e as Error).message}`));
        failures.push({ itemIdentifier: m.messageId });
      }));
    }));
    // Lambda may freeze the instance once we return.
    await runs.flush();
    return { batchItemFailures: failures };
  };
}
