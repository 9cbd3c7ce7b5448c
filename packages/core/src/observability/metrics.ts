import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchEvent, FindingEvent, Observer, RequestEnd, RequestStart, WorkerRestart } from './events.js';
import { countedForModel, ensembleFigures } from './ensemble-figures.js';
import type { MetricsEndpoint, MetricsSources, StageDepth } from './endpoint.js';

import { FAILURE_REASONS, failureReason, type FailureReason } from './failure-reason.js';
import { BucketHistogram, type HistogramSeries } from './bucket-histogram.js';

export type { MetricsSources, StageDepth };

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

type Labels = Partial<Record<string, string>>;

/**
 * One model's (pipeline's or stage's) running totals. Events add to plain
 * numbers: prom-client hashes a child's labels on every inc(), so the
 * counters read these totals when scraped instead.
 */
interface ModelSeries {
  labels: Labels;
  success: number;
  failure: Record<FailureReason, number>;
  count: number;
  exec: number;
  requestUs: number;
  queueUs: number;
  computeInputUs: number;
  computeInferUs: number;
  computeOutputUs: number;
}

interface StageSeries extends ModelSeries {
  /** The pipeline's own series, which sum its stages' queue and compute times. */
  pipeline: ModelSeries;
  coldStarts: number;
  batchSize: HistogramSeries;
}

type Total = Exclude<keyof ModelSeries, 'labels' | 'failure'>;

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
  private readonly restarts = new Map<string, { labels: Labels; n: number }>();
  private readonly responses = new Map<string, { labels: Labels; n: number }>();
  private readonly findings = new Map<string, { labels: Labels; n: number }>();
  private readonly batchSize: BucketHistogram;

  constructor(opts: PrometheusMetricsOptions = {}) {
    const registers = [this.registry];
    const all = () => [...this.models.values(), ...this.stages.values()];
    // Scrape time: each series' total is added to a counter reset first, so the text shows the totals.
    const counter = (name: string, help: string, labelNames: readonly string[], read: () => Iterable<[Labels, number]>) =>
      new Counter({ name, help, labelNames, registers, collect() { this.reset(); for (const [l, v] of read()) this.inc(l, v); } });
    // Whole microseconds, as Triton writes them (rounding a growing total keeps it from ever going down).
    const total = (field: Total) => function* (): Iterable<[Labels, number]> { for (const s of all()) yield [s.labels, Math.round(s[field])]; };
    counter('nv_inference_request_success', 'Successful inference requests (a request counts once, whatever its batch); for a stage, its items', LABELS, total('success'));
    counter('nv_inference_request_failure', 'Failed inference requests by reason (REJECTED: refused or timed out, CANCELED, BACKEND: a stage failed, OTHER); for a stage, its items', [...LABELS, 'reason'], function* () {
      for (const s of all()) for (const r of FAILURE_REASONS) yield [{ ...s.labels, reason: r }, s.failure[r]];
    });
    counter('nv_inference_count', 'Inferences performed: items (request rows) of successful requests; for a stage, the items it ran', LABELS, total('count'));
    counter('nv_inference_exec_count', 'Executions: requests run for a pipeline, batches run for a stage (count / exec_count is the average batch)', LABELS, total('exec'));
    counter('nv_inference_request_duration_us', 'Cumulative end-to-end handling time of successful requests (for a stage: of its items, queue included), microseconds', LABELS, total('requestUs'));
    counter('nv_inference_queue_duration_us', "Cumulative time items waited in a stage's queue, microseconds; a pipeline's requests wait only in its stages (0, as a Triton ensemble's)", LABELS, total('queueUs'));
    counter('nv_inference_compute_input_duration_us', "Cumulative time moving batches to and from the stage (both directions, measured as one), per item, microseconds; a pipeline's request counts its stages' for it", LABELS, total('computeInputUs'));
    counter('nv_inference_compute_infer_duration_us', "Cumulative time the model or function ran, per item, microseconds; a pipeline's request counts the compute of every batch its items rode in", LABELS, total('computeInferUs'));
    counter('nv_inference_compute_output_duration_us', 'Always 0: the output transfer is counted in nv_inference_compute_input_duration_us', LABELS, total('computeOutputUs'));

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
    this.batchSize = new BucketHistogram('ensemble_stage_batch_size', 'Items per batch a stage ran', BATCH_BUCKETS, this.registry);
    counter('ensemble_stage_cold_starts_total', 'Batches that paid for loading the stage (a new worker, a new Lambda instance)', LABELS, function* () {
      for (const s of self.stages.values()) yield [s.labels, s.coldStarts];
    });
    counter('ensemble_stage_worker_restarts_total', "Worker processes that ended unasked (crash, killed at the stage's deadline) and were replaced", ['model', 'pipeline', 'stage', 'reason'], function* () {
      for (const r of self.restarts.values()) yield [r.labels, r.n];
    });
    if (opts.runRecordBacklog) {
      const backlog = opts.runRecordBacklog;
      new Gauge({
        name: 'ensemble_run_records_unwritten', help: 'Run records taken but not yet written to DynamoDB', registers,
        collect() { this.set(backlog()); },
      });
    }
    counter('ensemble_http_responses_total', 'HTTP responses by method and status code, every route', ['method', 'code'], function* () {
      for (const r of self.responses.values()) yield [r.labels, r.n];
    });
    counter('ensemble_monitor_findings_total', "What a pipeline's tensor monitors found (docs/manifest.md, monitors), by tensor, rule and action", ['model', 'version', 'tensor', 'rule', 'action'], function* () {
      for (const f of self.findings.values()) yield [f.labels, f.n];
    });
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  requestStarted(e: RequestStart): void {
    this.pending.set(e.pipeline, (this.pending.get(e.pipeline) ?? 0) + 1);
  }

  requestEnded(e: RequestEnd): void {
    this.pending.set(e.pipeline, (this.pending.get(e.pipeline) ?? 1) - 1);
    // Refused before a version was chosen (the pipeline unloaded, loading, failed): no model's request, as in
    // Triton, and no series with an empty version; its status is in ensemble_http_responses_total.
    if (!countedForModel(e)) return;
    this.versions.set(e.pipeline, e.version);
    const s = this.model(e.pipeline, e.version);
    if (e.error === undefined && e.httpStatus < 400) {
      const f = ensembleFigures(e);
      s.success++;
      s.exec += f.executions;
      s.count += f.items;
      s.requestUs += e.durationMs * US_PER_MS;
      s.computeInferUs += f.computeInferMs * US_PER_MS;
      // Both directions in compute_input, as a stage's are here.
      s.computeInputUs += f.transferMs * US_PER_MS;
    } else {
      s.failure[failureReason(e.error)]++;
    }
  }

  batch(e: BatchEvent): void {
    const s = this.stage(e.pipeline, e.version, e.stage);
    s.batchSize.observe(e.size);
    if (e.coldStart) s.coldStarts++;
    if (e.error !== undefined) {
      s.failure[failureReason(e.error)] += e.size;
      return;
    }
    // Items that failed on their own failed in the stage: the backend's.
    s.failure.BACKEND += e.failedItems;
    const ok = e.size - e.failedItems;
    s.success += ok;
    s.count += ok;
    s.exec++;
    // Per item, as Triton counts a batched request's compute: each item waited for the whole batch.
    const queueUs = e.queueMs * US_PER_MS;
    const inferUs = e.computeMs * e.size * US_PER_MS;
    const inputUs = Math.max(0, e.callMs - e.computeMs) * e.size * US_PER_MS;
    s.requestUs += queueUs + e.callMs * e.size * US_PER_MS;
    s.queueUs += queueUs;
    s.computeInferUs += inferUs;
    s.computeInputUs += inputUs;
  }

  workerRestarted(e: WorkerRestart): void {
    const key = `${e.pipeline}\0${e.stage}\0${e.reason}`;
    let r = this.restarts.get(key);
    if (!r) this.restarts.set(key, r = { labels: { model: `${e.pipeline}.${e.stage}`, pipeline: e.pipeline, stage: e.stage, reason: e.reason }, n: 0 });
    r.n++;
  }

  finding(e: FindingEvent): void {
    const key = `${e.pipeline}\0${e.version}\0${e.tensor}\0${e.rule}\0${e.action}`;
    let f = this.findings.get(key);
    if (!f) this.findings.set(key, f = { labels: { model: e.pipeline, version: e.version, tensor: e.tensor, rule: e.rule, action: e.action }, n: 0 });
    f.n++;
  }

  httpResponse(method: string, status: number): void {
    const m = HTTP_METHODS.has(method) ? method : 'OTHER';
    const key = `${m} ${status}`;
    let r = this.responses.get(key);
    if (!r) this.responses.set(key, r = { labels: { method: m, code: String(status) }, n: 0 });
    r.n++;
  }

  async scrape(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private model(pipeline: string, version: string): ModelSeries {
    const key = `${pipeline}\0${version}`;
    let s = this.models.get(key);
    if (!s) this.models.set(key, s = series({ model: pipeline, version }));
    return s;
  }

  private stage(pipeline: string, version: string, stage: string): StageSeries {
    const key = `${pipeline}\0${version}\0${stage}`;
    let s = this.stages.get(key);
    if (!s) {
      const labels = stageLabels({ pipeline, version, stage });
      s = { ...series(labels), pipeline: this.model(pipeline, version), coldStarts: 0, batchSize: this.batchSize.labels(labels as Record<string, string>) };
      this.stages.set(key, s);
    }
    return s;
  }
}

/** A model's totals at zero: a scrape shows the model (and every failure reason) before anything happened. */
function series(labels: Labels): ModelSeries {
  return {
    labels, success: 0, failure: { REJECTED: 0, CANCELED: 0, BACKEND: 0, OTHER: 0 }, count: 0, exec: 0,
    requestUs: 0, queueUs: 0, computeInputUs: 0, computeInferUs: 0, computeOutputUs: 0,
  };
}

function stageLabels(s: { pipeline: string; version: string; stage: string }): Record<Label, string> {
  return { model: `${s.pipeline}.${s.stage}`, version: s.version, pipeline: s.pipeline, stage: s.stage };
}
