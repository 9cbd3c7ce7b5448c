import type { Datatype } from '../tensor/types.js';

/**
 * A pipeline manifest after loading and validation (see docs/manifest.md for
 * the YAML form). Every optional YAML field has its default filled in here.
 */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /**
   * Shape of the whole tensor as the API sees it. For pipeline inputs and
   * outputs dim 0 is the item (batch) dimension and is -1; -1 elsewhere means
   * a free dimension.
   */
  shape: number[];
  description?: string;
  /**
   * The axis of `shape` that counts the items (absent: 0). A model whose
   * state is [2, batch, 64] takes 1: requests are cut into items along it,
   * batches are stacked along it, and responses join items along it.
   */
  batchAxis?: number;
  /**
   * Pipeline inputs only: one value per request, not per item (a sample
   * rate). `shape` is its real shape with no item dim; every item of the
   * request sees it whole, and only items that agree on it share a batch.
   */
  perRequest?: boolean;
  /**
   * Pipeline outputs only: how items whose free dimensions differ are joined
   * into one response tensor. Without it, loading refuses an output with a
   * free dimension beyond dim 0 (its items could not be stacked).
   */
  ragged?: RaggedJoin;
  /**
   * Pipeline outputs only: the name of a companion output (INT64 [-1]) that
   * gives, for each row of this output, the request row it came from (which
   * image a text line belongs to).
   */
  rowIndex?: string;
  /** Set on outputs the executor derives (companions above), not a stage. */
  derived?: DerivedOutput;
  /**
   * Pipeline outputs only: the name of each class (index i names class i), for
   * the classification extension's "value:index:label" strings. From `labels:`
   * inline or `labels_file:` (one label per line); `labelsFile` is that file's
   * absolute path, so a deployment can ship it.
   */
  labels?: string[];
  labelsFile?: string;
  /** Pipeline inputs and outputs only: checks on every request's values (see MonitorSpec). */
  monitors?: MonitorSpec[];
}

/**
 * What a monitor does with a finding: `record` puts it in the run record (and
 * the metrics) and lets the request go on; `reject` also fails the request
 * (400 for an input, 422 for an output).
 */
export type MonitorAction = 'record' | 'reject';

/** A check on one pipeline input or output, run on every request that carries it. */
export type MonitorSpec = RangeMonitor | FiniteMonitor | ShapeMonitor | DriftMonitor;

/** Every value within [min, max] (either bound may be absent, not both). NaN is the finite rule's. */
export interface RangeMonitor {
  rule: 'range';
  action: MonitorAction;
  min?: number;
  max?: number;
}

/** No NaN or ±Infinity (floating-point tensors only). */
export interface FiniteMonitor {
  rule: 'finite';
  action: MonitorAction;
}

/**
 * Bounds on each item's shape (the tensor without its item dimension): per
 * dimension (-1: unbounded; the item dimension is always -1), on the
 * elements per item, and on the byte length of each BYTES element.
 */
export interface ShapeMonitor {
  rule: 'shape';
  action: MonitorAction;
  minShape?: number[];
  maxShape?: number[];
  minElements?: number;
  maxElements?: number;
  minLength?: number;
  maxLength?: number;
}

export type DriftStat = 'mean' | 'std' | 'histogram';

/** Fixed bins of a histogram: `count` equal bins over [min, max), plus one below and one above. */
export interface HistogramBins {
  min: number;
  max: number;
  count: number;
}

/**
 * A simple statistic of the last `window` items' values (all elements of an
 * item, pooled) compared with a reference: the first `window` items served,
 * or a file. Drift describes traffic, not one request: it only records.
 */
export interface DriftMonitor {
  rule: 'drift';
  action: 'record';
  stat: DriftStat;
  /** Items in the rolling window (and in a window reference). */
  window: number;
  /**
   * mean: |mean - reference mean| in reference standard deviations;
   * std: |std / reference std - 1|; histogram: population stability index.
   */
  threshold: number;
  /** stat: histogram only. */
  bins?: HistogramBins;
  reference: DriftReference;
}

export type DriftReference =
  | { kind: 'window' }
  | { kind: 'file'; file: string; stats: ReferenceStats };

/** What a reference file holds for one tensor (`ensemble monitor reference` writes it). */
export interface ReferenceStats {
  /** Items and values the statistics were computed from. */
  items: number;
  values: number;
  mean: number;
  std: number;
  /** Counts per bin (below min first, above max last), for a histogram monitor: the file's bins equal the monitor's. */
  histogram?: number[];
}

/** A module told of the pipeline's run and batch events (docs/manifest.md, observers). */
export interface ObserverSpec {
  /** Absolute path of the module. */
  module: string;
  options: Record<string, unknown>;
}

/** Items are padded at the end of every free dimension to the largest in the response. */
export interface RaggedJoin {
  padValue: number;
  /** Companion output (INT64 [-1, rank]): each row's real per-item shape. */
  lengths?: string;
}

export type DerivedOutput =
  | { kind: 'lengths'; of: string }
  | { kind: 'row_index'; of: string };

export interface BatchSpec {
  /** Largest batch a stage call receives. 1 disables batching. */
  maxSize: number;
  /** How long the oldest queued item may wait for the batch to fill. */
  maxDelayMs: number;
  /** Items queued per stage before new requests get 429. */
  maxQueue: number;
  /**
   * True when the manifest leaves max_queue out: the queue then admits what
   * the stage serves within queue_timeout_ms at its measured rate, up to
   * max_queue's default.
   */
  queueFromServiceRate: boolean;
  /** An item waiting longer than this in the queue fails with 504. */
  queueTimeoutMs: number;
  /**
   * Items whose shapes differ along this axis of the per-item tensor (no batch
   * dim) are zero-padded to the largest in the batch. Without it only items of
   * equal shapes share a batch.
   */
  padAxis?: number;
  padValue: number;
}

export interface ScaleSpec {
  /** Local: worker sessions. Lambda: provisioned concurrency hint. */
  instances: number;
  /**
   * Intra-op threads per ONNX Runtime session. `threads: auto` in the
   * manifest resolves to the cores of the machine that loads it (the gateway's
   * locally, the stage function's own vCPUs on Lambda) and sets autoThreads.
   * With more than one, the session's threads sleep instead of spinning
   * between parallel sections, so a busy machine's cores go to other work.
   */
  threads: number;
  /** `threads: auto`: threads is this machine's core count, not the manifest's number. */
  autoThreads?: boolean;
  /** Lambda memory size. */
  memoryMb: number;
  /** Lambda reserved concurrency; the Lambda transport caps parallel chunks at it. */
  reservedConcurrency?: number;
  provisionedConcurrency?: number;
  /**
   * Local serving only: where an ONNX stage's sessions live. 'process' (the
   * default when absent): worker processes, crash- and hang-isolated.
   * 'inline': in the gateway's process, no IPC per batch, but session.run
   * shares the event loop and a native crash takes the gateway down.
   */
  isolation?: StageIsolation;
  /**
   * Local serving only: false keeps this stage's workers its own. Absent or
   * true: stages of any pipeline with the same weights and session settings
   * share one set of workers.
   */
  share?: boolean;
}

export type StageIsolation = 'process' | 'inline';

interface StageBase {
  name: string;
  /** Stage-local name -> pipeline tensor name, for what it reads. */
  inputs: Record<string, string>;
  /** Stage-local name -> pipeline tensor name, for what it writes. */
  outputs: Record<string, string>;
  batch: BatchSpec;
  scale: ScaleSpec;
  timeoutMs: number;
  /** Free-form options passed to the stage (function stages read them). */
  options: Record<string, unknown>;
  /** Conditional routing: the stage runs only for items where this holds. */
  when?: StageCondition;
  /**
   * Filled at load from the pipeline tensors' specs: stage-local inputs that
   * are per request (given to the call whole, not stacked), and inputs and
   * outputs whose batch axis is not 0. Absent for an ordinary stage.
   */
  perRequest?: string[];
  inputAxes?: Record<string, number>;
  outputAxes?: Record<string, number>;
  /**
   * Set by placement/placement.ts's gatewayView on a stage function whose
   * pre-processing makes every model input in one shape (but the pad axis)
   * whatever it gets: the function pre-processes each item and runs the
   * session once per shape that makes, so the gateway may batch items whose
   * inputs (the pre-processing's) differ in shape.
   */
  anyShapes?: boolean;
}

/**
 * `when: flag` runs a stage only for the items whose `flag` tensor (one BOOL or
 * number per item; non-zero is true) is true. For the other items each output
 * of the stage takes the tensor `otherwise` names instead, so every consumer
 * downstream still finds its input (early exit: an expensive stage only for
 * the items a cheap one flags).
 */
export interface StageCondition {
  tensor: string;
  /** Stage-local output name -> pipeline tensor used for items the condition skips. */
  otherwise: Record<string, string>;
}

export interface OnnxStage extends StageBase {
  kind: 'onnx';
  weights: {
    /** Object key in the weights bucket. */
    key: string;
    sha256: string;
    /** Local file `ensemble push` uploads from (absolute after loading). */
    source?: string;
  };
  session: {
    graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  };
}

export interface FunctionStage extends StageBase {
  kind: 'function';
  /** Absolute path of the TypeScript module. */
  module: string;
  /** One input item may produce many output items (one image -> many lines). */
  fanout: boolean;
  /**
   * Where it runs (placement/placement.ts): `auto` (default) by the size
   * rule; `with_model` in the Lambda function or the worker process of the
   * ONNX stage it feeds, or after the one whose outputs it reads (the author knows the real sizes the
   * rule can only guess); `gateway` never moved.
   */
  placement?: FunctionPlacement;
}

export const FUNCTION_PLACEMENTS = ['auto', 'with_model', 'gateway'] as const;
export type FunctionPlacement = (typeof FUNCTION_PLACEMENTS)[number];

export type StageSpec = OnnxStage | FunctionStage;

/** How batch jobs of this pipeline are fed on Lambda (the `jobs:` section; docs/jobs.md). */
export interface JobsSpec {
  /** Receives before an item's message moves to the dead-letter queue (the redrive policy's maxReceiveCount). */
  maxReceives?: number;
  /** Messages per consumer invocation (the event source mapping's batch size); default the first stage's batch, at most 10. */
  batchSize?: number;
  /** Consumer invocations at once (the event source mapping's maximum concurrency); default Lambda's (no cap). */
  maxConcurrency?: number;
}

export interface Manifest {
  name: string;
  version: string;
  description?: string;
  /** Absolute path of the YAML file and its folder. */
  file: string;
  dir: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  stages: StageSpec[];
  /** Request body limit for this pipeline. */
  maxRequestBytes: number;
  /**
   * Most items one request may have: request rows (dim 0), and what each
   * fan-out stage produces for one request. Past it the request gets 413.
   */
  maxItems: number;
  /**
   * Most bytes the outputs of one request's stages may hold, summed over its
   * stages and items (a decoded image, a detector's input, ...). Past it the
   * request gets 413: a small body must not make the gateway hold gigabytes.
   */
  maxRunBytes: number;
  /** Batch job settings, when the manifest has a `jobs:` section. */
  jobs?: JobsSpec;
  /** Stage names in a topological order (producers before consumers). */
  order: string[];
  /**
   * Lineage depth of every tensor: 0 for pipeline inputs, +1 after each
   * fan-out stage. A stage runs at the deepest level of its inputs.
   */
  levels: Record<string, number>;
  /**
   * The fan-out stages every tensor went through, outermost first ([] for
   * pipeline inputs). Two sibling fan-outs of one level have different
   * lineages, so their items never mix.
   */
  lineage: Record<string, string[]>;
  /** Every tensor whose type is known statically (pipeline I/O, typed function outputs). */
  tensors: Record<string, TensorSpec>;
  /** Observer modules loaded with the pipeline (absent: none). */
  observers?: ObserverSpec[];
}
