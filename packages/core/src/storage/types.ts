/** Per-stage line of a run record. */
export interface StageRunRecord {
  stage: string;
  /** Batches this request's items went through, and their sizes (shared batches count whole). */
  batches: number;
  batchSizes: number[];
  /** Items of this request the stage handled. */
  items: number;
  /** The longest queue wait of one of its items. */
  queueWaitMs: number;
  /** The batches' compute, summed (batches that ran side by side count each). */
  computeMs: number;
  coldStart: boolean;
  initMs?: number;
  /**
   * Offsets from the run's start (ms): the request's first item entering the
   * stage's queue, and its last item coming back (or the stage failing).
   * Absent for a stage that only skipped items, and in records written before
   * they existed.
   */
  startMs?: number;
  endMs?: number;
  /** Items the stage's `when` condition skipped (they took its `otherwise` tensors). */
  skipped?: number;
  error?: string;
  /*
   * Profile fields (docs/profiles.md). Absent in records written before them,
   * and each one where the transport could not measure it.
   */
  /** Moving tensors to and from the stage (ms), over this request's batches: call wall time less compute. */
  transferMs?: number;
  /** The parts of transferMs the transport could tell apart. */
  transfer?: { serializeMs?: number; ipcMs?: number; invokeMs?: number; spillUpMs?: number; spillDownMs?: number };
  /**
   * Lambda: this request's batches' Invokes, summed (a batch shared with
   * other requests counts whole, as transfer does): payload bytes each way,
   * S3 spills each way (bytes, ms; 0 bytes: no spill), round trip vs the
   * handler's own duration (docs/profiles.md).
   */
  hops?: { invokes: number; requestBytes: number; responseBytes: number; spillUpBytes: number; spillDownBytes: number; spillUpMs: number; spillDownMs: number; roundTripMs: number; functionMs: number };
  /** Tensor bytes this request's items sent to the stage and got back from it. */
  bytesIn?: number;
  bytesOut?: number;
  /** Highest peak resident memory of the process that ran this request's batches (worker, stage function; the gateway in-process). */
  peakRssBytes?: number;
  /** CPU time of those batches, a shared batch apportioned by this request's share of its items (ms). */
  cpuMs?: number;
  /**
   * With coldStart: where initMs went (fetch, hash and session sum to at most
   * initMs); from a stage function also the environment's start before its
   * init (startMs) and the first batch's run (firstRunMs, part of computeMs).
   */
  coldStartSplit?: { startMs?: number; fetchMs: number; hashMs: number; sessionMs: number; firstRunMs?: number };
  /** On Lambda: this request's share of the stage function's billed GB-seconds and of its invocations. */
  lambda?: { gbSeconds: number; invocations: number; arch: 'x86_64' | 'arm64'; memoryMb: number };
}

/** A run's energy, carbon and cost, from its stages' CPU time and Lambda billing (observability/profile.ts). */
export interface RunProfile {
  /** CPU time over all stages (ms). */
  cpuMs: number;
  /** cpuMs x the watts per core assumed (J). */
  energyJ: number;
  /** energyJ in kWh x the grid's intensity (gCO2e). */
  carbonG: number;
  /** On Lambda: GB-seconds and invocations at AWS's prices (USD). */
  costUsd?: number;
  /** Which table of figures the estimate used (observability/assumptions.ts). */
  assumptions: string;
}

export type RunStatus = 'succeeded' | 'failed';

/** What a monitor found in a request's input or output (docs/manifest.md, monitors). */
export interface Finding {
  tensor: string;
  /** The monitor's rule: range, finite, shape, drift. */
  rule: string;
  /** record: noted, the request went on; reject: the request failed for it. */
  action: 'record' | 'reject';
  message: string;
  /** The measured number the rule compared (the value out of range, the drift distance), when there is one. */
  value?: number;
}

/** One DynamoDB item per inference request, failures included. */
export interface RunRecord {
  id: string;
  pipeline: string;
  version: string;
  status: RunStatus;
  /** HTTP status the caller got. */
  httpStatus: number;
  /** ISO-8601 start time. */
  startedAt: string;
  durationMs: number;
  stages: StageRunRecord[];
  error?: string;
  /**
   * The W3C trace id (32 hex) the request ran in: the caller's traceparent,
   * the X-Ray root on Lambda, or one started here; the same id as the
   * response's x-ensemble-trace-id header and the exported spans.
   */
  traceId?: string;
  /** Which transport ran it ('local', 'lambda'). */
  transport?: string;
  /** Set when texts or lists were cut to keep the record under DynamoDB's item limit. */
  truncated?: boolean;
  /** Stage lines left out of `stages` for the same reason. */
  stagesOmitted?: number;
  /** Energy, carbon and cost estimates (absent in records written before them). */
  profile?: RunProfile;
  /** The batch job this run was one item of (absent for a synchronous request). */
  jobId?: string;
  /** The job item's key (its input object, or `<jsonl key>#<line>`). */
  jobItem?: string;
  /** What the pipeline's monitors found in this request (absent: nothing, or no monitors). */
  findings?: Finding[];
}

export interface RunStore {
  /**
   * Take a record; never waits for DynamoDB. A store that makes records
   * durable first (the journal) returns a promise that settles once this
   * record is: the gateway sends the response after it.
   */
  put(record: RunRecord): void | Promise<void>;
  /**
   * Whether a new request may start now: a store that cannot keep up says
   * why (an error the gateway answers with) instead of taking records it
   * would have to drop.
   */
  admit?(): Error | undefined;
  get(id: string): Promise<RunRecord | undefined>;
  /** Most recent first, through the pipeline/time index (no scan). */
  listByPipeline(pipeline: string, limit?: number): Promise<RunRecord[]>;
  /** Write everything queued; called on shutdown. */
  flush(): Promise<void>;
}

export interface WeightTiming {
  fetchMs: number;
  hashMs: number;
}

export interface WeightStore {
  /**
   * A local file holding the object `key`, verified against `sha256`,
   * downloaded once and cached on disk by hash.
   */
  resolve(key: string, sha256: string): Promise<string>;
  /**
   * Where the last resolve of `sha256` spent its time (ms): downloading it
   * (0 when the cached file was used) and hashing it. For a cold start's split.
   */
  timing?(sha256: string): WeightTiming | undefined;
  /** Whether `key` exists in the bucket, and its sha256 if recorded. */
  head(key: string): Promise<{ exists: boolean; sha256?: string; size?: number }>;
}
