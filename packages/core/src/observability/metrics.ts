import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchEvent, Observer, RequestEnd, RequestStart, WorkerRestart } from './events.js';
import type { MetricsEndpoint, MetricsSources, StageDepth } from './endpoint.js';

export type { MetricsSources, StageDepth };
import { FAILURE_REASONS, failureReason, type FailureReason } from './failure-reason.js';

export interface PrometheusMetricsOptions extends MetricsSources {
  /** Node.js process metrics (CPU, memory, event loop lag, GC): prom-client's default collectors. Default true. */
  processMetrics?: boolean;
}

/**
 * Triton's label names: `model` is the pipeline, or `{pipeline}.{stage}` for
 * a stage (a stage answers as a model of its own, as an ensemble's composing
 * models do in Triton); a stage's series also say `pipeline` and `stage`, so
 * they can be summed per pipeline without rewriting `model`.
 */
const LABELS = ['model', 'version', 'pipeline', 'stage'] as const;
type Label = typeof LABELS[number];

const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const US_PER_MS = 1000;

type C = Counter.Internal;

/** The children of one model's (pipeline's or stage's) counters: label lookups happen once per model, not per event. */
interface ModelSeries {
  success: C;
  failure: Record<FailureReason, C>;
  count: C;
  exec: C;
  request: C;
  queue: C;
  computeInput: C;
  computeInfer: C;
  computeOutput: C;
}

interface StageSeries extends ModelSeries {
  /** The pipeline's own series, which sum its stages' queue and compute times. */
  pipeline: ModelSeries;
  batchSize: Histogram.Internal<Label>;
  coldStarts: C;
}

/**
 * The engine's events as Prometheus metrics, with Triton's names
 * (docs/user_guide/metrics.md) where Triton has one and an `ensemble_` prefix
 * where it has none. One Registry per instance: several servers in one
 * process (tests, embedders) keep their own figures.
 */
export class PrometheusMetrics implements Observer, MetricsEndpoint {
  readonly registry = new Registry();
  private readonly models = new Map<string, ModelSeries>();
  private readonly stages = new Map<string, StageSeries>();
  private readonly pending = new Map<string, number>();
  /** The last version a pipeline ran, for its pending gauge: requests are pending before a version is chosen. */
  private readonly versions = new Map<string, string>();
  private readonly http = new Map<string, C>();

  private readonly success: Counter<Label>;
  private readonly failure: Counter<Label | 'reason'>;
  private readonly count: Counter<Label>;
  private readonly exec: Counter<Label>;
  private readonly request: Counter<Label>;
  private readonly queue: Counter<Label>;
  private readonly computeInput: Counter<Label>;
  private readonly computeInfer: Counter<Label>;
  private readonly computeOutput: Counter<Label>;
  private readonly batchSize: Histogram<Label>;
  private readonly coldStarts: Counter<Label>;
  private readonly restarts: Counter<'model' | 'pipeline' | 'stage' | 'reason'>;
  private readonly responses: Counter<'method' | 'code'>;

  constructor(opts: PrometheusMetricsOptions = {}) {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.success = counter('nv_inference_request_success', 'Successful inference requests (a request counts once, whatever its batch); for a stage, its items', LABELS);
    this.failure = counter('nv_inference_request_failure', 'Failed inference requests by reason (REJECTED: refused or timed out, CANCELED, BACKEND: a stage failed, OTHER); for a stage, its items', [...LABELS, 'reason']);
    this.count = counter('nv_inference_count', 'Inferences performed: items (request rows) of successful requests; for a stage, the items it ran', LABELS);
    this.exec = counter('nv_inference_exec_count', 'Executions: requests run for a pipeline, batches run for a stage (count / exec_count is the average batch)', LABELS);
    this.request = counter('nv_inference_request_duration_us', 'Cumulative end-to-end handling time of successful requests (for a stage: of its items, queue included), microseconds', LABELS);
    this.queue = counter('nv_inference_queue_duration_us', "Cumulative time items waited in stage queues, microseconds (a pipeline's is the sum of its stages')", LABELS);
    this.computeInput = counter('nv_inference_compute_input_duration_us', 'Cumulative time moving batches to and from the stage (both directions, measured as one), per item, microseconds', LABELS);
    this.computeInfer = counter('nv_inference_compute_infer_duration_us', 'Cumulative time the model or function ran, per item, microseconds', LABELS);
    this.computeOutput = counter('nv_inference_compute_output_duration_us', 'Always 0: the output transfer is counted in nv_inference_compute_input_duration_us', LABELS);

    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const self = this;
    // Read when scraped, and reset first: a stage unloaded since the last scrape leaves no stale series.
    new Gauge<Label>({
      name: 'nv_inference_pending_request_count', registers, labelNames: LABELS,
      help: 'Requests received and not yet answered; for a stage, items waiting in its queue',
      collect() {
        this.reset();
        for (const [pipeline, n] of self.pending) this.set({ model: pipeline, version: self.versions.get(pipeline) ?? '' }, n);
        for (const d of opts.queueDepths?.() ?? []) this.set(stageLabels(d), d.depth);
      },
    });
    new Gauge<Label>({
      name: 'ensemble_stage_queue_depth', registers, labelNames: LABELS,
      help: "Items waiting in a stage's queue for a batch",
      collect() {
        this.reset();
        for (const d of opts.queueDepths?.() ?? []) this.set(stageLabels(d), d.depth);
      },
    });
    this.batchSize = new Histogram<Label>({
      name: 'ensemble_stage_batch_size', help: 'Items per batch a stage ran', labelNames: LABELS, buckets: BATCH_BUCKETS, registers,
    });
    this.coldStarts = counter('ensemble_stage_cold_starts_total', 'Batches that paid for loading the stage (a new worker, a new Lambda instance)', LABELS);
    this.restarts = counter('ensemble_stage_worker_restarts_total', "Worker processes that ended unasked (crash, killed at the stage's deadline) and were replaced", ['model', 'pipeline', 'stage', 'reason']);
    if (opts.runRecordBacklog) {
      const backlog = opts.runRecordBacklog;
      new Gauge({
        name: 'ensemble_run_records_unwritten', help: 'Run records taken but not yet written to DynamoDB', registers,
        collect() { this.set(backlog()); },
      });
    }
    this.responses = counter('ensemble_http_responses_total', 'HTTP responses by method and status code, every route', ['method', 'code']);
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  requestStarted(e: RequestStart): void {
    this.pending.set(e.pipeline, (this.pending.get(e.pipeline) ?? 0) + 1);
  }

  requestEnded(e: RequestEnd): void {
    this.pending.set(e.pipeline, (this.pending.get(e.pipeline) ?? 1) - 1);
    if (e.version) this.versions.set(e.pipeline, e.version);
    const s = this.model(e.pipeline, e.version);
    if (e.error === undefined && e.httpStatus < 400) {
      s.success.inc();
      s.exec.inc();
      if (e.items) s.count.inc(e.items);
      s.request.inc(e.durationMs * US_PER_MS);
    } else {
      s.failure[failureReason(e.error)].inc();
    }
  }

  batch(e: BatchEvent): void {
    const s = this.stage(e.pipeline, e.version, e.stage);
    s.batchSize.observe(e.size);
    if (e.coldStart) s.coldStarts.inc();
    if (e.error !== undefined) {
      s.failure[failureReason(e.error)].inc(e.size);
      return;
    }
    // Items that failed on their own failed in the stage: the backend's.
    if (e.failedItems > 0) s.failure.BACKEND.inc(e.failedItems);
    const ok = e.size - e.failedItems;
    s.success.inc(ok);
    s.count.inc(ok);
    s.exec.inc();
    // Per item, as Triton counts a batched request's compute: each item waited for the whole batch.
    const queueUs = e.queueMs * US_PER_MS;
    const inferUs = e.computeMs * e.size * US_PER_MS;
    const inputUs = Math.max(0, e.callMs - e.computeMs) * e.size * US_PER_MS;
    s.request.inc(queueUs + e.callMs * e.size * US_PER_MS);
    for (const m of [s, s.pipeline]) {
      m.queue.inc(queueUs);
      m.computeInfer.inc(inferUs);
      m.computeInput.inc(inputUs);
    }
  }

  workerRestarted(e: WorkerRestart): void {
    this.restarts.inc({ model: `${e.pipeline}.${e.stage}`, pipeline: e.pipeline, stage: e.stage, reason: e.reason });
  }

  httpResponse(method: string, status: number): void {
    const m = HTTP_METHODS.has(method) ? method : 'OTHER';
    const key = `${m} ${status}`;
    let c = this.http.get(key);
    if (!c) this.http.set(key, c = this.responses.labels({ method: m, code: String(status) }));
    c.inc();
  }

  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private model(pipeline: string, version: string): ModelSeries {
    const key = `${pipeline}\0${version}`;
    let s = this.models.get(key);
    if (!s) this.models.set(key, s = this.series({ model: pipeline, version }));
    return s;
  }

  private stage(pipeline: string, version: string, stage: string): StageSeries {
    const key = `${pipeline}\0${version}\0${stage}`;
    let s = this.stages.get(key);
    if (!s) {
      const labels = stageLabels({ pipeline, version, stage });
      s = {
        ...this.series(labels), pipeline: this.model(pipeline, version),
        batchSize: this.batchSize.labels(labels), coldStarts: this.coldStarts.labels(labels),
      };
      this.stages.set(key, s);
    }
    return s;
  }

  /** Every counter's child for one model, created at zero so a scrape shows the model before its first failure. */
  private series(labels: Partial<Record<Label, string>>): ModelSeries {
    const failure = Object.fromEntries(FAILURE_REASONS.map((r) => [r, this.failure.labels({ ...labels, reason: r })])) as Record<FailureReason, C>;
    const child = (c: Counter<Label>) => { const x = c.labels(labels); x.inc(0); return x; };
    for (const f of Object.values(failure)) f.inc(0);
    return {
      success: child(this.success), failure, count: child(this.count), exec: child(this.exec), request: child(this.request),
      queue: child(this.queue), computeInput: child(this.computeInput), computeInfer: child(this.computeInfer), computeOutput: child(this.computeOutput),
    };
  }
}

function stageLabels(s: { pipeline: string; version: string; stage: string }): Record<Label, string> {
  return { model: `${s.pipeline}.${s.stage}`, version: s.version, pipeline: s.pipeline, stage: s.stage };
}
