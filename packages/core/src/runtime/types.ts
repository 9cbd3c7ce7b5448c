import type { Item } from '../tensor/types.js';

/**
 * The stage call: a batch of items in, one outcome per item out. An outcome
 * holds the items it produced (exactly one for ONNX stages, any number for a
 * fan-out function stage) or that item's own error; one bad item does not fail
 * its batch-mates. `code` is an ErrorCode, a plain string because outcomes
 * cross to and from worker processes and stage functions.
 */
export type ItemOutcome =
  | { ok: true; items: Item[] }
  | { ok: false; error: string; code?: string };

/**
 * Where a stage's cold start went (ms): weights from S3, their sha256 check,
 * the ONNX session; on a stage function also the environment's start before
 * its init and the first batch's run. The last two are optional: workers and
 * older builds leave them out.
 */
export interface ColdStartSplit {
  /** Process start to the stage's init beginning: the runtime and the entry's modules loaded. */
  startMs?: number;
  fetchMs: number;
  hashMs: number;
  sessionMs: number;
  /** The first batch's session.run: ONNX Runtime's first run allocates and picks kernels. */
  firstRunMs?: number;
}

/**
 * Where the time moving a batch to and from the stage went (ms), as far as
 * the transport can tell: stacking and splitting tensors or encoding them
 * (`serializeMs`), the trip between processes (`ipcMs`: worker pool) or the
 * Lambda Invoke around the handler (`invokeMs`), payloads parked in S3
 * (`spillUpMs`, `spillDownMs`).
 */
export interface TransferSplit {
  serializeMs?: number;
  ipcMs?: number;
  invokeMs?: number;
  spillUpMs?: number;
  spillDownMs?: number;
}

/**
 * The trips a batch made between the gateway and the process that ran it
 * (Lambda: the Invoke, a retried one counted once), as plain sums so a
 * request's batches add up: payload bytes each way as sent (a reference when
 * the payload went through S3), bytes parked in S3 each way (0: no spill)
 * and the time that took, the Invoke's round trip as the gateway saw it, and
 * the handler's own duration inside it.
 */
export interface HopSplit {
  invokes: number;
  requestBytes: number;
  responseBytes: number;
  spillUpBytes: number;
  spillDownBytes: number;
  spillUpMs: number;
  spillDownMs: number;
  roundTripMs: number;
  functionMs: number;
}

/** What a Lambda bills for one invocation of a stage function. */
export interface LambdaBilling {
  /** The handler's duration, rounded up to the millisecond as Lambda bills it. */
  billedMs: number;
  /** The function's configured memory. */
  memoryMb: number;
  arch: 'x86_64' | 'arm64';
}

export interface BatchResult {
  outcomes: ItemOutcome[];
  /** Wall time of the model / function itself, without queueing. */
  computeMs: number;
  /** True when this call paid for loading the stage (session creation, weights). */
  coldStart: boolean;
  initMs?: number;
  /*
   * The fields below are optional on purpose: a worker or stage function of
   * an older build leaves them out, and the batch still counts.
   */
  /** The cold start's parts, with `coldStart`; they sum to at most initMs. */
  coldStartSplit?: ColdStartSplit;
  /** CPU time (user + system) of the process that ran the batch, over the batch; its intra-op threads count. */
  cpuMs?: number;
  /** Peak resident memory of that process after the batch (bytes). */
  peakRssBytes?: number;
  /** Wall time of the call inside the process that ran it (worker, stage function), receiving to answering. */
  servedMs?: number;
  /** Intra-op threads of the session that ran the batch, where the transport chose them by load (the worker pool). */
  threads?: number;
  transfer?: TransferSplit;
  /** Set by the Lambda transport: the Invoke's bytes and times. */
  hops?: HopSplit;
  /** Set by a stage function on Lambda. */
  lambda?: LambdaBilling;
  /** The function stages run inside this call beside the model (placement/colocated.ts), one entry each, in run order. */
  colocated?: ColocatedRun[];
}

/** One co-located function stage's part of a batch: its observers count it as a batch of its own. */
export interface ColocatedRun {
  stage: string;
  /** Items it ran on (those a stage before it failed on do not reach it). */
  items: number;
  failedItems: number;
  /** Wall time of its call, ms. */
  computeMs: number;
}

/** Something that can run a batch for one stage: an ONNX session, a function module. */
export interface StageRuntime {
  /**
   * `signal`: the batch's deadline. A function stage rejects with its reason
   * as soon as it aborts; an ONNX session cannot be interrupted and ignores it.
   */
  run(items: Item[], signal?: AbortSignal): Promise<BatchResult>;
  close(): Promise<void>;
}

/** What a function stage's module exports (default export or named `stage`). */
export interface FunctionStageContext {
  stage: string;
  pipeline: string;
  /** The stage's `options` from the manifest. */
  options: Record<string, unknown>;
  /** Folder of the manifest, for stage files such as dictionaries. */
  dir: string;
  /**
   * In process() only: the batch's deadline, aborted (with a 504 naming the
   * stage) at the stage's timeout_ms. The batch fails then whether or not the
   * stage notices; a stage that waits on I/O or a long loop can pass it on
   * (fetch, timers) or check it to stop its work early. Absent in init().
   */
  signal?: AbortSignal;
}

export interface FunctionStageModule {
  /** Called once before the first item. */
  init?(ctx: FunctionStageContext): Promise<void> | void;
  /**
   * One item in. Return one item (1:1) or, for a `fanout: true` stage, an
   * array of items (possibly empty). Throw to fail this item only.
   */
  process(item: Item, ctx: FunctionStageContext): Promise<Item | Item[]> | Item | Item[];
}
