import { randomUUID } from 'node:crypto';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PipelineRegistry } from '../pipelines/registry.js';
import type { RunRecord, RunStore, StageRunRecord } from '../storage/types.js';
import type { Tensor } from '../tensor/types.js';
import { EnsembleError, NotFoundError, clip, toEnsembleError, type ErrorCode } from '../errors.js';
import { RunFailure } from '../executor/executor.js';
import { decodeInferRequest } from '../tensor/codec.js';
import { dataToJson } from '../tensor/json-data.js';
import { rawInputTensors } from '../manifest/raw-input.js';
import { validateInputs } from '../manifest/validate-inputs.js';
import type { JobQueues, QueueMessage } from './queue.js';
import type { JobStore } from './store.js';
import { writeResults } from './results.js';
import { JOB_PRIORITY, type ItemMessage, type JobRecord, type ResultLine } from './types.js';

export interface ConsumerDeps {
  registry: PipelineRegistry;
  runs: RunStore;
  store: JobStore;
  queues: JobQueues;
  s3: S3Client;
  bucket: string;
  /** The HTTP status a run record gives an error code (the HTTP edge's one mapping). */
  statusOf: (code: ErrorCode) => number;
  transport?: string;
  log?: (s: string) => void;
}

/** What to do with a message: delete it (the item has its outcome, or never will here), or let it come back later. */
export type MessageVerdict = 'done' | 'retry';

/**
 * Codes no second try can change: the input itself is wrong. Such an item
 * fails at once; anything else (a missing object, an overloaded stage, a
 * timeout, a crash) is retried with backoff until the dead-letter queue.
 */
const PERMANENT: ReadonlySet<ErrorCode> = new Set(['invalid_input', 'too_large']);

/** How long a consumer trusts what it read of a job (a cancel takes effect within this). */
const JOB_CACHE_MS = 1_000;

/**
 * Runs job items from queue messages through the pipeline's executor, the
 * same one synchronous requests use, at the job priority. A Lambda event's
 * records and the local poller's receives both come here.
 */
export class JobConsumer {
  private readonly jobs = new Map<string, { job: JobRecord | undefined; at: number }>();

  constructor(readonly deps: ConsumerDeps) {}

  /** One message of a pipeline's queue. */
  async handle(m: QueueMessage): Promise<MessageVerdict> {
    const msg = parseMessage(m.body);
    if (!msg) { this.deps.log?.(`job queue: dropped a message that is not a job item: ${clip(m.body, 100)}`); return 'done'; }
    const job = await this.job(msg.jobId);
    if (!job) return 'done';
    if (job.state === 'cancelled') {
      // An item that was tried and is waiting for its retry has started: it ends now, as failed,
      // so that the cancelled job's running count reaches 0. One never started is just dropped.
      const row = await this.deps.store.item(job.id, msg.key);
      if (row?.state === 'running') await this.finish(job.id, { key: msg.key, error: `job cancelled before this item's retry${row.lastError ? ` (last error: ${row.lastError})` : ''}`, code: 'cancelled' });
      return 'done';
    }
    // Finished or failed: queued items of such a job are dropped.
    if (job.state !== 'active') return 'done';
    const { store } = this.deps;
    if ((await store.claim(job.id, msg.key)) === 'finished') return 'done';
    const refused = this.deps.runs.admit?.();
    if (refused) return 'retry';
    const outcome = await this.run(msg);
    if ('error' in outcome.line && !outcome.permanent) {
      await store.noteError(job.id, msg.key, outcome.line.error);
      return 'retry';
    }
    await this.finish(job.id, outcome.line);
    return 'done';
  }

  /** One message of a pipeline's dead-letter queue: the item failed on every receive, and that is its outcome. */
  async handleDeadLetter(m: QueueMessage): Promise<MessageVerdict> {
    const msg = parseMessage(m.body);
    if (!msg) return 'done';
    const job = await this.job(msg.jobId, true);
    if (!job) return 'done';
    const row = await this.deps.store.item(job.id, msg.key);
    if (row && row.state !== 'running') return 'done';
    const why = row?.lastError ?? 'no try of it finished (the consumer stopped while running it)';
    await this.finish(job.id, { key: msg.key, error: `gave up after ${this.deps.queues.policy.maxReceives} tries: ${why}` });
    return 'done';
  }

  /** Write an item's one outcome; the write that completes the job also finishes it. */
  async finish(jobId: string, line: ResultLine): Promise<void> {
    const job = await this.deps.store.finish(jobId, line);
    if (job) await finalizeIfDone(this.deps, job);
  }

  private async job(id: string, fresh = false): Promise<JobRecord | undefined> {
    const hit = this.jobs.get(id);
    if (!fresh && hit && Date.now() - hit.at < JOB_CACHE_MS) return hit.job;
    const job = await this.deps.store.get(id);
    this.jobs.set(id, { job, at: Date.now() });
    if (this.jobs.size > 1_000) this.jobs.delete(this.jobs.keys().next().value!);
    return job;
  }

  /** Read the item's input, run it, and leave its run record (tagged with the job) in the run store. */
  private async run(msg: ItemMessage): Promise<{ line: ResultLine; permanent: boolean }> {
    const { registry, runs, statusOf, transport } = this.deps;
    const runId = randomUUID();
    const startedAt = new Date();
    const t0 = performance.now();
    let version = '';
    let stages: StageRunRecord[] = [];
    let ran = false;
    try {
      const input = await this.read(msg.object);
      const outputs = await registry.use(msg.pipeline, undefined, async (p) => {
        version = p.manifest.version;
        const tensors = msg.format === 'raw'
          ? rawInputTensors(p.manifest, input, `job item '${clip(msg.key, 100)}'`)
          : decodeInferRequest(input, undefined, { maxItems: p.manifest.maxItems }).tensors;
        validateInputs(p.manifest, tensors);
        ran = true;
        try {
          const result = await p.executor.run(tensors, { priority: JOB_PRIORITY });
          stages = result.stages;
          return p.manifest.outputs.map((o) => jsonOutput(o.name, result.outputs[o.name] as Tensor));
        } catch (e) {
          if (e instanceof RunFailure) { stages = e.stages; throw e.error; }
          throw e;
        }
      });
      await runs.put(this.record({ runId, pipeline: msg.pipeline, version, startedAt, t0, stages, status: 200, msg }));
      return { line: { key: msg.key, runId, outputs }, permanent: false };
    } catch (err) {
      const e = toEnsembleError(err);
      const status = statusOf(e.code);
      // An input that could not be read or decoded never ran: no run record, as for a request refused before it ran.
      if (ran || PERMANENT.has(e.code)) await runs.put(this.record({ runId, pipeline: msg.pipeline, version, startedAt, t0, stages, status, msg, error: e.message }));
      return { line: { key: msg.key, runId, error: e.message, code: e.code }, permanent: PERMANENT.has(e.code) };
    }
  }

  private record(r: { runId: string; pipeline: string; version: string; startedAt: Date; t0: number; stages: StageRunRecord[]; status: number; msg: ItemMessage; error?: string }): RunRecord {
    const rec: RunRecord = {
      id: r.runId, pipeline: r.pipeline, version: r.version, status: r.status < 400 ? 'succeeded' : 'failed', httpStatus: r.status,
      startedAt: r.startedAt.toISOString(), durationMs: Math.round((performance.now() - r.t0) * 100) / 100,
      stages: r.stages, jobId: r.msg.jobId, jobItem: r.msg.key,
    };
    if (this.deps.transport) rec.transport = this.deps.transport;
    if (r.error !== undefined) rec.error = r.error;
    return rec;
  }

  private async read(key: string): Promise<Uint8Array> {
    try {
      const out = await this.deps.s3.send(new GetObjectCommand({ Bucket: this.deps.bucket, Key: key }));
      return await out.Body!.transformToByteArray();
    } catch (e) {
      if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(`no object '${clip(key, 200)}' in bucket '${this.deps.bucket}'`);
      throw new EnsembleError(`reading '${clip(key, 200)}': ${(e as Error).message}`, 'bad_gateway', { cause: e });
    }
  }
}

/**
 * Finish a job whose items all have their outcome (succeeded, with the
 * results written), or write the results of a cancelled one once its running
 * items are done. Safe to call again: the transition is conditional, the
 * result objects are rewritten the same.
 */
export async function finalizeIfDone(deps: Pick<ConsumerDeps, 's3' | 'bucket' | 'store'>, job: JobRecord): Promise<JobRecord> {
  const done = job.succeeded + job.failed;
  if (job.state === 'active' && done >= job.total) {
    await deps.store.transition(job.id, 'succeeded');
    job = (await deps.store.get(job.id)) ?? job;
  }
  if ((job.state === 'succeeded' || (job.state === 'cancelled' && job.started <= done)) && !job.resultsAt) {
    await writeResults(deps.s3, deps.bucket, deps.store, job);
    job = (await deps.store.get(job.id)) ?? job;
  }
  return job;
}

function jsonOutput(name: string, t: Tensor): unknown {
  return { name, datatype: t.datatype, shape: t.shape, data: dataToJson(t.datatype, t.data, `output '${name}'`) };
}

function parseMessage(body: string): ItemMessage | undefined {
  try {
    const m = JSON.parse(body) as Partial<ItemMessage>;
    if (typeof m.jobId !== 'string' || typeof m.pipeline !== 'string' || typeof m.key !== 'string' || typeof m.object !== 'string') return undefined;
    return { jobId: m.jobId, pipeline: m.pipeline, key: m.key, object: m.object, format: m.format === 'request' ? 'request' : 'raw' };
  } catch {
    return undefined;
  }
}
