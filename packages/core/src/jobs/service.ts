import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Manifest } from '../manifest/types.js';
import type { PipelineRegistry } from '../pipelines/registry.js';
import type { RunStore } from '../storage/types.js';
import { DEFAULT_JOBS_QUEUE_PREFIX, DEFAULT_JOBS_TABLE, type AwsSettings } from '../storage/config.js';
import { ConflictError, NotFoundError, type ErrorCode } from '../errors.js';
import { JobQueues, DEFAULT_QUEUE_POLICY, type QueuePolicy } from './queue.js';
import { JobStore } from './store.js';
import { JobConsumer, finalizeIfDone } from './consumer.js';
import { QueuePoller } from './poller.js';
import { submitJob, type SubmitDeps } from './submit.js';
import { resultLines } from './results.js';
import { resumeJobs } from './resume.js';
import { jobStatus } from './status.js';
import { inFlightFor, quietInFlightFor } from './sizing.js';

export { firstStage, inFlightFor } from './sizing.js';
import type { JobStatus, ResultLine, SubmitJobRequest } from './types.js';

export interface JobsOptions {
  settings: AwsSettings;
  s3: S3Client;
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  registry: PipelineRegistry;
  runs: RunStore;
  statusOf: (code: ErrorCode) => number;
  transport?: string;
  policy?: QueuePolicy;
  log?: (s: string) => void;
}

/** Batch jobs as the gateway and the consumers see them: submit, watch, cancel, read results, consume. */
export class Jobs {
  readonly store: JobStore;
  readonly queues: JobQueues;
  readonly consumer: JobConsumer;
  readonly bucket: string;
  private readonly submitDeps: SubmitDeps;
  private readonly pollers: QueuePoller[] = [];

  constructor(private readonly opts: JobsOptions) {
    this.bucket = opts.settings.bucket;
    this.store = new JobStore(opts.dynamo, opts.settings.jobsTable ?? DEFAULT_JOBS_TABLE);
    this.queues = new JobQueues(opts.sqs, opts.settings.jobsQueuePrefix ?? DEFAULT_JOBS_QUEUE_PREFIX, opts.policy ?? DEFAULT_QUEUE_POLICY);
    this.submitDeps = { s3: opts.s3, bucket: this.bucket, store: this.store, queues: this.queues };
    this.consumer = new JobConsumer({
      registry: opts.registry, runs: opts.runs, store: this.store, queues: this.queues, s3: opts.s3, bucket: this.bucket,
      statusOf: opts.statusOf, transport: opts.transport, log: opts.log,
    });
  }

  async submit(pipeline: string, req: SubmitJobRequest): Promise<JobStatus> {
    const job = await submitJob(this.submitDeps, pipeline, req);
    return jobStatus(job, this.bucket);
  }

  async status(id: string): Promise<JobStatus> {
    let job = await this.store.get(id);
    if (!job) throw new NotFoundError(`no job '${id}'`);
    // A consumer killed between an item's write and its counter's leaves the counters short, and the
    // job idle: past two visibility timeouts without a change, count the item rows instead.
    const idleMs = Date.now() - Date.parse(job.updatedAt ?? job.createdAt);
    if (job.state === 'active' && job.succeeded + job.failed < job.total && idleMs > 2_000 * this.queues.policy.visibilitySeconds) {
      job = (await this.store.recount(id)) ?? job;
    }
    // A finisher that stopped half-way (a crash) leaves this for whoever looks next.
    if (job.state === 'active' && job.succeeded + job.failed >= job.total) job = await finalizeIfDone(this.submitDeps, job);
    return jobStatus(job, this.bucket);
  }

  /** Cancel: items not yet started are dropped when their message comes; running ones finish. */
  async cancel(id: string): Promise<JobStatus> {
    const job = await this.store.get(id);
    if (!job) throw new NotFoundError(`no job '${id}'`);
    if (!(await this.store.transition(id, 'cancelled'))) {
      const now = await this.store.get(id);
      throw new ConflictError(`job '${id}' is ${now?.state ?? job.state}; only a queued or running job can be cancelled`);
    }
    return jobStatus(await finalizeIfDone(this.submitDeps, (await this.store.get(id))!), this.bucket);
  }

  /** The pipeline a job belongs to (for access checks), or undefined. */
  async pipelineOf(id: string): Promise<string | undefined> {
    return (await this.store.get(id))?.pipeline;
  }

  results(id: string): AsyncGenerator<ResultLine> { return resultLines(this.store, id); }

  /**
   * Poll each pipeline's queue in this process (`ensemble serve`), feeding
   * its first stage's batches on every instance; on AWS Lambda's event
   * source mapping does this instead.
   */
  consume(manifests: Manifest[]): void {
    for (const m of manifests) {
      this.pollers.push(new QueuePoller(this.consumer, m.name, {
        maxInFlight: inFlightFor(m), quietInFlight: quietInFlightFor(m), activity: this.consumer.deps.registry.activity, log: this.opts.log,
      }).start());
    }
  }

  /**
   * Queue again every item of an unfinished job that has no outcome: after a
   * restart on a queue that does not keep messages (the local emulator keeps
   * them in memory). Outcomes are written once, so an item queued twice still
   * gets one.
   */
  async resume(): Promise<number> {
    return resumeJobs(this.submitDeps);
  }

  async close(): Promise<void> {
    await Promise.all(this.pollers.splice(0).map((p) => p.close()));
  }
}
