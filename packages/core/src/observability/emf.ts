import type { BatchEvent, Observer, RequestEnd } from './events.js';
import { failureReason } from './failure-reason.js';

/**
 * CloudWatch Embedded Metric Format: metrics as one JSON log line that
 * CloudWatch Logs turns into metrics, so a Lambda function reports them
 * with no call on the request path. The spec's limits
 * (CloudWatch_Embedded_Metric_Format_Specification) are kept here.
 */
export const EMF_LIMITS = { metricsPerLine: 100, dimensionsPerSet: 30, valuesPerMetric: 100 } as const;

export const DEFAULT_NAMESPACE = 'Ensemble';

export type EmfUnit = 'Milliseconds' | 'Microseconds' | 'Count';

/** A figure summed between lines (a count), or every value kept (a distribution: CloudWatch gives percentiles). */
type Kind = 'sum' | 'values';

interface Figure { unit: EmfUnit; kind: Kind; values: number[] }

/** The figures of one set of dimension values until they are written. */
interface Group {
  dimensions: Record<string, string>;
  figures: Map<string, Figure>;
}

export interface EmfOptions {
  namespace?: string;
  /** Where a line goes (default console.log: a Lambda function's stdout is its CloudWatch log). */
  write?: (line: string) => void;
  /** Write once per this many invocations (default 1); flush() writes what is left. */
  flushEvery?: number;
  now?: () => number;
}

/**
 * Figures grouped by their dimension values, written as one EMF line per
 * group: dimension values are the line's own members, so one line carries
 * one value per dimension. A group is written early if a distribution
 * reaches 100 values, so a line never holds more.
 */
export class EmfBuffer {
  private readonly groups = new Map<string, Group>();
  private readonly namespace: string;
  private readonly write: (line: string) => void;
  private readonly now: () => number;

  constructor(opts: EmfOptions = {}) {
    this.namespace = opts.namespace?.trim() || DEFAULT_NAMESPACE;
    this.write = opts.write ?? ((line) => console.log(line));
    this.now = opts.now ?? Date.now;
  }

  count(dimensions: Record<string, string>, name: string, value: number): void {
    this.add(dimensions, name, 'Count', 'sum', value);
  }

  /** A figure summed until the line is written (a count, or a total time). */
  sum(dimensions: Record<string, string>, name: string, unit: EmfUnit, value: number): void {
    this.add(dimensions, name, unit, 'sum', value);
  }

  /** One observation of a distribution (a duration, a batch size). */
  observe(dimensions: Record<string, string>, name: string, unit: EmfUnit, value: number): void {
    this.add(dimensions, name, unit, 'values', value);
  }

  /** Write every group as its line and start over. */
  flush(): void {
    for (const [key, g] of this.groups) {
      this.groups.delete(key);
      for (const line of emfLines(this.namespace, g, this.now())) this.write(line);
    }
  }

  private add(dimensions: Record<string, string>, name: string, unit: EmfUnit, kind: Kind, value: number): void {
    // EMF takes numbers only: a NaN or an infinity would make CloudWatch drop the whole line.
    if (!Number.isFinite(value)) return;
    const key = JSON.stringify(dimensions);
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, g = { dimensions, figures: new Map() });
    let f = g.figures.get(name);
    if (!f) g.figures.set(name, f = { unit, kind, values: [] });
    if (f.kind === 'sum') f.values[0] = (f.values[0] ?? 0) + value;
    else {
      f.values.push(value);
      if (f.values.length >= EMF_LIMITS.valuesPerMetric) {
        this.groups.delete(key);
        for (const line of emfLines(this.namespace, g, this.now())) this.write(line);
      }
    }
  }
}

/** One group as EMF lines: one, unless it has more metrics than a line may hold. */
export function emfLines(namespace: string, g: Group, timestamp: number): string[] {
  const names = Object.keys(g.dimensions);
  if (names.length > EMF_LIMITS.dimensionsPerSet) throw new Error(`an EMF dimension set holds at most ${EMF_LIMITS.dimensionsPerSet} dimensions, got ${names.length}`);
  const figures = [...g.figures];
  const lines: string[] = [];
  for (let i = 0; i < figures.length; i += EMF_LIMITS.metricsPerLine) {
    const part = figures.slice(i, i + EMF_LIMITS.metricsPerLine);
    const doc: Record<string, unknown> = {
      _aws: {
        Timestamp: timestamp,
        CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [names], Metrics: part.map(([Name, f]) => ({ Name, Unit: f.unit })) }],
      },
      ...g.dimensions,
    };
    for (const [name, f] of part) doc[name] = f.kind === 'sum' || f.values.length === 1 ? f.values[0] : f.values;
    lines.push(JSON.stringify(doc));
  }
  return lines;
}

/**
 * A Lambda function's figures buffered over its invocations and written as
 * one line every `flushEvery` of them (default each), before the invocation
 * returns: Lambda may freeze the instance right after.
 */
abstract class InvocationEmf {
  protected readonly buffer: EmfBuffer;
  private readonly every: number;
  private invocations = 0;

  constructor(opts: EmfOptions = {}) {
    this.buffer = new EmfBuffer(opts);
    this.every = Math.max(1, Math.floor(opts.flushEvery ?? 1));
  }

  invocationEnded(): void {
    if (++this.invocations % this.every === 0) this.buffer.flush();
  }

  flush(): void { this.buffer.flush(); }
}

/**
 * The Lambda gateway's figures: per pipeline (dimension `model`), Triton's
 * counts and durations under CloudWatch names. One invocation is one
 * request, so it writes one line, at the end of the invocation
 * (`invocationEnded`, before the handler returns: Lambda may freeze the
 * instance right after).
 */
export class GatewayEmf extends InvocationEmf implements Observer {

  requestEnded(e: RequestEnd): void {
    const d = { model: e.pipeline };
    const ok = e.error === undefined && e.httpStatus < 400;
    this.buffer.count(d, 'RequestSuccess', ok ? 1 : 0);
    this.buffer.count(d, 'RequestFailure', ok ? 0 : 1);
    if (!ok) this.buffer.count(d, `RequestFailure${capitalized(failureReason(e.error))}`, 1);
    if (ok && e.items) this.buffer.count(d, 'InferenceCount', e.items);
    this.buffer.observe(d, 'RequestDuration', 'Milliseconds', e.durationMs);
  }

  batch(e: BatchEvent): void {
    // Queue waits happen here, in the gateway's batchers; the stage functions report their own compute.
    const d = { model: e.pipeline };
    this.buffer.sum(d, 'QueueDuration', 'Milliseconds', e.queueMs);
    // A stage run inside another's call is not a call of its own.
    if (!e.within) this.buffer.count(d, 'StageCalls', 1);
    if (e.coldStart) this.buffer.count(d, 'StageColdStarts', 1);
  }

}

/** What one stage function ran in one invocation: a batch. */
export interface StageInvocation {
  pipeline: string;
  stage: string;
  items: number;
  failedItems: number;
  computeMs: number;
  coldStart: boolean;
  initMs?: number;
}

/** A stage function's figures, dimensions `model` (the pipeline) and `stage`: one line per invocation. */
export class StageEmf extends InvocationEmf {

  invocation(e: StageInvocation): void {
    const d = { model: e.pipeline, stage: e.stage };
    this.buffer.count(d, 'ExecCount', 1);
    this.buffer.count(d, 'InferenceCount', e.items - e.failedItems);
    this.buffer.count(d, 'FailedItems', e.failedItems);
    this.buffer.observe(d, 'BatchSize', 'Count', e.items);
    this.buffer.observe(d, 'ComputeInferDuration', 'Milliseconds', e.computeMs);
    this.buffer.count(d, 'ColdStart', e.coldStart ? 1 : 0);
    if (e.initMs !== undefined) this.buffer.observe(d, 'InitDuration', 'Milliseconds', e.initMs);
    this.invocationEnded();
  }

  /** An invocation whose payload was refused before any item ran (not this stage's, unreadable): a line all the same. */
  rejected(e: Pick<StageInvocation, 'pipeline' | 'stage'>): void {
    this.buffer.count({ model: e.pipeline, stage: e.stage }, 'RejectedInvocations', 1);
    this.invocationEnded();
  }
}

function capitalized(reason: string): string {
  return reason[0] + reason.slice(1).toLowerCase();
}
