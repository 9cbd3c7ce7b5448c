import type { BatchEvent, Observer, RequestEnd } from './events.js';
import { countedForModel, ensembleFigures } from './ensemble-figures.js';

/**
 * Triton's statistics extension (docs/protocol/extension_statistics.md in
 * triton-inference-server/server), counted from the engine's events: a
 * pipeline counts as Triton counts an ensemble (one success or failure per
 * request, one execution per successful request), and each stage as a
 * composing model of its own, named `{pipeline}.{stage}` (one success per
 * item, one execution per batch).
 */

/** `{count, ns}` as Triton renders a duration statistic (both JSON numbers). */
export interface DurationStat {
  count: number;
  ns: number;
}

export interface InferenceStats {
  success: DurationStat;
  fail: DurationStat;
  queue: DurationStat;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
  cache_hit: DurationStat;
  cache_miss: DurationStat;
}

export interface BatchStat {
  batch_size: number;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
}

/** One entry of `model_stats`, field for field as Triton's server writes it. */
export interface ModelStat {
  name: string;
  version: string;
  /** Milliseconds since the epoch of the last successful execution, 0 if none. */
  last_inference: number;
  /** Items (rows) inferred successfully. */
  inference_count: number;
  /** Executions: batches for a stage, successful requests for a pipeline. */
  execution_count: number;
  inference_stats: InferenceStats;
  response_stats: Record<string, never>;
  batch_stats: BatchStat[];
  memory_usage: never[];
}

/** Cumulative nanoseconds are kept as floats and rounded when rendered. */
interface Counters {
  lastInference: number;
  inferenceCount: number;
  executionCount: number;
  success: { count: number; ns: number };
  fail: { count: number; ns: number };
  queueNs: number;
  inputNs: number;
  inferNs: number;
  outputNs: number;
  batches: Map<number, { count: number; inputNs: number; inferNs: number; outputNs: number }>;
}

const NS_PER_MS = 1e6;

/** The name a stage answers to as a model of its own. Pipeline and stage names hold no '.', so it splits back unambiguously. */
export function stageModelName(pipeline: string, stage: string): string {
  return `${pipeline}.${stage}`;
}

/** `{pipeline}.{stage}` split in two, or undefined for a pipeline's own name. */
export function splitStageModel(name: string): { pipeline: string; stage: string } | undefined {
  const dot = name.indexOf('.');
  if (dot < 0) return undefined;
  return { pipeline: name.slice(0, dot), stage: name.slice(dot + 1) };
}

export class ModelStatistics implements Observer {
  private readonly models = new Map<string, Counters>();

  requestEnded(e: RequestEnd): void {
    if (!countedForModel(e)) return;
    const c = this.counters(e.pipeline, e.version);
    const ns = e.durationMs * NS_PER_MS;
    if (e.httpStatus >= 400) {
      c.fail.count++;
      c.fail.ns += ns;
      return;
    }
    // Triton's ensemble: its batch size is the request's, its compute its steps' for it (ensemble-figures.ts).
    const f = ensembleFigures(e);
    const inferNs = f.computeInferMs * NS_PER_MS;
    // The transfer is timed as a round trip: each direction gets half, as a stage model's does.
    const moveNs = (f.transferMs / 2) * NS_PER_MS;
    c.success.count++;
    c.success.ns += ns;
    c.inferenceCount += f.items;
    c.inferNs += inferNs;
    c.inputNs += moveNs;
    c.outputNs += moveNs;
    if (f.executions) this.executed(c, f.items, moveNs, inferNs, moveNs);
  }

  batch(e: BatchEvent): void {
    const c = this.counters(stageModelName(e.pipeline, e.stage), e.version);
    const size = Math.max(1, e.size);
    const ok = e.error === undefined ? Math.max(0, e.size - e.failedItems) : 0;
    const failed = e.size - ok;
    // Each item waited its own time; the event gives their sum, so an item's share is the mean.
    const queueNs = (e.queueMs / size) * NS_PER_MS;
    const callNs = e.callMs * NS_PER_MS;
    const inferNs = e.computeMs * NS_PER_MS;
    // The rest of the call is moving tensors to the stage and back (IPC, Lambda Invoke); the transport
    // times the round trip, not its halves, so each direction gets half.
    const moveNs = Math.max(0, callNs - inferNs) / 2;
    c.success.count += ok;
    c.success.ns += ok * (queueNs + callNs);
    c.fail.count += failed;
    c.fail.ns += failed * (queueNs + callNs);
    // As Triton's backends do, every request (item) of a batch is charged the batch's compute.
    c.queueNs += ok * queueNs;
    c.inputNs += ok * moveNs;
    c.inferNs += ok * inferNs;
    c.outputNs += ok * moveNs;
    c.inferenceCount += ok;
    if (e.error === undefined) this.executed(c, e.size, moveNs, inferNs, moveNs);
  }

  /** The statistics of one model version; zeros for one that has not run yet. */
  stat(name: string, version: string): ModelStat {
    const c = this.models.get(key(name, version));
    const d = (count: number, ns: number): DurationStat => ({ count, ns: Math.round(ns) });
    if (!c) return render(name, version, undefined, d);
    return render(name, version, c, d);
  }

  /** Forget a model's counters (an unloaded version). */
  forget(name: string, version: string): void {
    this.models.delete(key(name, version));
  }

  /** A pipeline version (re)loaded: it and its stage models start at zero, as a model Triton loads again does. */
  loaded(m: { name: string; version: string; stages: readonly { name: string }[] }): void {
    this.forget(m.name, m.version);
    for (const s of m.stages) this.forget(stageModelName(m.name, s.name), m.version);
  }

  private executed(c: Counters, size: number, inputNs: number, inferNs: number, outputNs: number): void {
    c.executionCount++;
    c.lastInference = Math.max(c.lastInference, Date.now());
    let b = c.batches.get(size);
    if (!b) c.batches.set(size, b = { count: 0, inputNs: 0, inferNs: 0, outputNs: 0 });
    b.count++;
    b.inputNs += inputNs;
    b.inferNs += inferNs;
    b.outputNs += outputNs;
  }

  private counters(name: string, version: string): Counters {
    const k = key(name, version);
    let c = this.models.get(k);
    if (!c) {
      c = {
        lastInference: 0, inferenceCount: 0, executionCount: 0,
        success: { count: 0, ns: 0 }, fail: { count: 0, ns: 0 },
        queueNs: 0, inputNs: 0, inferNs: 0, outputNs: 0, batches: new Map(),
      };
      this.models.set(k, c);
    }
    return c;
  }
}

function key(name: string, version: string): string {
  return `${name}\u0000${version}`;
}

function render(name: string, version: string, c: Counters | undefined, d: (count: number, ns: number) => DurationStat): ModelStat {
  // Triton counts queue and compute over the successes that were not cache hits; there is no cache here.
  const n = c?.success.count ?? 0;
  return {
    name,
    version,
    last_inference: c?.lastInference ?? 0,
    inference_count: c?.inferenceCount ?? 0,
    execution_count: c?.executionCount ?? 0,
    inference_stats: {
      success: d(n, c?.success.ns ?? 0),
      fail: d(c?.fail.count ?? 0, c?.fail.ns ?? 0),
      queue: d(n, c?.queueNs ?? 0),
      compute_input: d(n, c?.inputNs ?? 0),
      compute_infer: d(n, c?.inferNs ?? 0),
      compute_output: d(n, c?.outputNs ?? 0),
      cache_hit: d(0, 0),
      cache_miss: d(0, 0),
    },
    response_stats: {},
    batch_stats: [...(c?.batches ?? new Map<number, never>())]
      .sort(([a], [b]) => a - b)
      .map(([size, b]) => ({
        batch_size: size,
        compute_input: d(b.count, b.inputNs),
        compute_infer: d(b.count, b.inferNs),
        compute_output: d(b.count, b.outputNs),
      })),
    memory_usage: [],
  };
}
