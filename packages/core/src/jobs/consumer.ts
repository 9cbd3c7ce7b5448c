import { runProfile } from '../observability/profile.js';
import { lambdaFunctionOf, processAssumptions } from '../observability/assumptions.js';
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
import { NO_DELTA, addDelta, outcomeDelta, type CounterDelta, type ItemRow, type JobStore } from './store.js';
import { writeResults } from './results.js';
import { GroupCommit } from './group-commit.js';
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

/**
 * How long a counter move waits for others to share its write: the job's
 * counters lag its item rows by at most this (its end does not: the moves
 * that may complete it go out at once), and a job whose items end a few per
 * second moves its counters once in this, not once per item.
 */
export const COUNTER_DELAY_MS = 2_000;

/** How long a consumer trusts what it read of a job (a cancel takes effect within this). */
const JOB_CACHE_MS = 1_000;

/**
 * Runs job items from queue messages through the pipeline's executor, the
 * same one synchronous requests use, at the job priority. A Lambda event's
 * records and the local poller's receives both come here.
 */
export class JobConsumer {
  private readonly jobs = new Map<string, { job: JobRecord | undefined; at: number }>();
  /** Per active job: its total, the outcomes counted as of the last counter write read back, and those waiting to be. */
  private readonly progress = new Map<string, { total: number; done: number; waiting: number }>();
  private readonly counters = new GroupCommit<{ jobId: string; delta: CounterDelta }>((group) => this.moveGroup(group), { maxDelayMs: COUNTER_DELAY_MS });

  constructor(readonly deps: ConsumerDeps) {}

  /** One message of a pipeline's queue (a batch of one). */
  async handle(m: QueueMessage): Promise<MessageVerdict> {
    return (await this.handleBatch([m]))[0];
  }

  /** One message of a pipeline's dead-letter queue (a batch of one). */
  async handleDeadLetter(m: QueueMessage): Promise<MessageVerdict> {
    return (await this.handleBatch([m], { dead: true }))[0];
  }

  /**
   * A batch of messages as one receive (or one Lambda event) gives them,
   * answered once every message has its verdict and the job's counters have
   * moved for them (a Lambda handler returns then). Verdicts in message order.
   */
  async handleBatch(messages: QueueMessage[], opts: { dead?: boolean } = {}): Promise<MessageVerdict[]> {
    const verdicts: MessageVerdict[] = messages.map(() => 'done');
    try {
      await this.handleEach(messages, opts, (i, v) => { verdicts[i] = v; });
    } finally {
      await this.flush();
    }
    return verdicts;
  }

  /**
   * A batch of messages as one receive gives them, each message's verdict
   * told as soon as its own item has its outcome (or is to be retried), not
   * once the whole batch has: the slowest item does not hold back the others,
   * so a poller refills the pipeline as items end. The items run side by
   * side; each outcome is its one conditional write; the job's counters move
   * through a group commit, one write for what ended within COUNTER_DELAY_MS
   * (take-ups included), not one per item or per batch. Resolves once every
   * message has had its verdict; rejects (after the others' verdicts) when an
   * item's outcome could not be written: such a message has none, and comes
   * back after its visibility timeout.
   */
  async handleEach(messages: QueueMessage[], opts: { dead?: boolean }, onVerdict: (index: number, verdict: MessageVerdict) => void): Promise<void> {
    const byJob = new Map<string, { index: number; msg: ItemMessage; receives: number }[]>();
    messages.forEach((m, index) => {
      const msg = parseMessage(m.body);
      if (!msg) { this.deps.log?.(`job queue: dropped a message that is not a job item: ${clip(m.body, 100)}`); onVerdict(index, 'done'); return; }
      const group = byJob.get(msg.jobId) ?? [];
      group.push({ index, msg, receives: m.receiveCount });
      byJob.set(msg.jobId, group);
    });
    const ends = await Promise.allSettled([...byJob].map(async ([jobId, group]) => {
      const tell = (i: number, v: MessageVerdict) => onVerdict(group[i].index, v);
      if (opts.dead) {
        const verdicts = await this.deadLetters(jobId, group.map((g) => g.msg));
        verdicts.forEach((v, i) => tell(i, v));
      } else {
        await this.items(jobId, group, tell);
      }
    }));
    const failed = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Write the counter moves waiting in the group commit now. */
  flush(): Promise<void> { return this.counters.flush(); }

  /** One job's items of a batch, each verdict told as its item ends. */
  private async items(jobId: string, group: { msg: ItemMessage; receives: number }[], tell: (i: number, v: MessageVerdict) => void): Promise<void> {
    const receivedAt = new Date().toISOString();
    const msgs = group.map((g) => g.msg);
    const all = (v: MessageVerdict) => msgs.forEach((_, i) => tell(i, v));
    const job = await this.job(jobId);
    if (!job) { all('done'); return; }
    const { store } = this.deps;
    if (job.state === 'cancelled') {
      // An item that was tried and is waiting for its retry has started: it ends now, as failed,
      // so that the cancelled job's running count reaches 0. One never started is just dropped.
      const rows = await store.rows(job.id, msgs.map((m) => m.key));
      const lines: ResultLine[] = [...rows.values()].filter((r) => r.state === 'running')
        .map((r) => ({ key: r.key, error: `job cancelled before this item's retry${r.lastError ? ` (last error: ${r.lastError})` : ''}`, code: 'cancelled' }));
      await this.settle(job.id, lines);
      all('done');
      return;
    }
    // Finished or failed: queued items of such a job are dropped.
    if (job.state !== 'active') { all('done'); return; }
    if (!this.progress.has(job.id)) {
      this.progress.set(job.id, { total: job.total, done: job.succeeded + job.failed, waiting: 0 });
      if (this.progress.size > 1_000) this.progress.delete(this.progress.keys().next().value!);
    }
    // Only a message received before can find its item with an outcome (a redelivery): its row is read, one
    // BatchGetItem for the batch's. A first receive is taken up without a read; should it be a duplicate of an
    // item that has its outcome (SQS delivers at least once), the conditional outcome write refuses the second.
    const again = msgs.filter((_, i) => group[i].receives > 1).map((m) => m.key);
    const rows = again.length ? await store.rows(job.id, again) : new Map<string, ItemRow>();
    // A redelivered message whose item has its outcome is deleted; one whose item has no row is taken up for the first time.
    const todo: number[] = [];
    msgs.forEach((m, i) => {
      const r = rows.get(m.key);
      if (!r || r.state === 'running') todo.push(i); else tell(i, 'done');
    });
    if (!todo.length) return;
    if (this.deps.runs.admit?.()) { for (const i of todo) tell(i, 'retry'); return; }
    const fresh = new Set(todo.filter((i) => !rows.has(msgs[i].key)).map((i) => msgs[i].key)).size;
    if (fresh) this.move(job.id, { ...NO_DELTA, started: fresh, startedAt: receivedAt });
    const ends = await Promise.allSettled(todo.map(async (i) => {
      const o = await this.run(msgs[i]);
      if ('error' in o.line && !o.permanent) {
        await store.noteError(job.id, o.line.key, o.line.error, o.line.code);
        tell(i, 'retry');
        return;
      }
      // False: the item had its outcome already (a redelivery overlapping this try); nothing to count.
      if (await store.writeOutcome(job.id, o.line)) this.move(job.id, outcomeDelta(o.line));
      tell(i, 'done');
    }));
    const failed = ends.find((e): e is PromiseRejectedResult => e.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Move a job's counters, not waited for: through the group commit. A move
   * that fails leaves the counters short, as a process killed before it would;
   * recount() repairs them.
   */
  private move(jobId: string, delta: CounterDelta): void {
    this.counters.add({ jobId, delta }).catch((e: unknown) => this.deps.log?.(`job ${jobId}: counters not moved (they are recounted from the item rows later): ${(e as Error).message}`));
    const p = this.progress.get(jobId);
    if (!p) return;
    p.waiting += delta.succeeded + delta.failed;
    // The moves that may complete the job go out at once: its end (and its results) need not wait out the delay.
    if (p.done + p.waiting >= p.total) void this.counters.flush().catch(() => undefined);
  }

  /** One group of counter moves: one write per job, and the write that completes a job finishes it. */
  private async moveGroup(group: { jobId: string; delta: CounterDelta }[]): Promise<void> {
    const byJob = new Map<string, CounterDelta>();
    for (const g of group) byJob.set(g.jobId, addDelta(byJob.get(g.jobId) ?? NO_DELTA, g.delta));
    await Promise.all([...byJob].map(async ([jobId, delta]) => {
      const p = this.progress.get(jobId);
      if (p) p.waiting -= delta.succeeded + delta.failed;
      const job = await this.deps.store.count(jobId, delta);
      if (p && job) p.done = job.succeeded + job.failed;
      if (!job || job.state !== 'active' || job.succeeded + job.failed >= job.total) this.progress.delete(jobId);
      if (job && (delta.succeeded || delta.failed)) await finalizeIfDone(this.deps, job);
    }));
  }

  /** One job's dead letters of a batch: each item failed on every receive, and that is its outcome. */
  private async deadLetters(jobId: string, msgs: ItemMessage[]): Promise<MessageVerdict[]> {
    const job = await this.job(jobId, true);
    if (!job) return msgs.map(() => 'done');
    const rows = await this.deps.store.rows(job.id, msgs.map((m) => m.key));
    const lines = msgs.filter((m) => { const r = rows.get(m.key); return !r || r.state === 'running'; }).map((m): ResultLine => {
      const row = rows.get(m.key);
      const why = row?.lastError ?? 'no try of it finished (the consumer stopped while running it)';
      const line: ResultLine = { key: m.key, error: `gave up after ${this.deps.queues.maxReceives(m.pipeline)} tries: ${why}` };
      // The last try's code (not_found for a missing input, timeout, ...), as every other failed line has one.
      if (row?.lastCode) line.code = row.lastCode;
      return line;
    });
    await this.settle(job.id, lines);
    return msgs.map(() => 'done');
  }

  /**
   * Write outcomes (each conditional, side by side), then move the counters
   * once by the writes that won; the write that completes the job also
   * finishes it (the dead-letter and cancel paths).
   */
  async settle(jobId: string, lines: ResultLine[]): Promise<void> {
    if (!lines.length) return;
    const { store } = this.deps;
    const won = await Promise.all(lines.map((l) => store.writeOutcome(jobId, l)));
    const delta = lines.reduce((d, l, i) => (won[i] ? addDelta(d, outcomeDelta(l)) : d), NO_DELTA);
    if (!delta.succeeded && !delta.failed) return;
    const job = await store.count(jobId, delta);
    if (job) await finalizeIfDone(this.deps, job);
  }

  /** Write one item's outcome; the write that completes the job also finishes it. */
  async finish(jobId: string, line: ResultLine): Promise<void> {
    await this.settle(jobId, [line]);
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
      const input = msg.inline !== undefined ? new TextEncoder().encode(msg.inline) : await this.read(msg.object);
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
    const fn = lambdaFunctionOf();
    rec.profile = runProfile(r.stages, processAssumptions(), fn && { ...fn, durationMs: rec.durationMs });
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
  // A cancelled job's results are written again when an item that was running then ends later.
  const stale = !job.resultsAt || (job.state === 'cancelled' && (job.updatedAt ?? '') > job.resultsAt);
  if ((job.state === 'succeeded' || (job.state === 'cancelled' && job.started <= done)) && stale) {
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
    const msg: ItemMessage = { jobId: m.jobId, pipeline: m.pipeline, key: m.key, object: m.object, format: m.format === 'request' ? 'request' : 'raw' };
    if (typeof m.inline === 'string') msg.inline = m.inline;
    return msg;
  } catch {
    return undefined;
  }
}
