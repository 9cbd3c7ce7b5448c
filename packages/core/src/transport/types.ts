import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { TraceCarrier } from '../observability/trace-context.js';
import type { Placement } from '../placement/placement.js';

/** How transports key a stage of a loaded pipeline (by its address) in their own tables. */
export function stageKey(pipeline: string, stage: string): string { return `${pipeline}/${stage}`; }

/** Whether `key` (a stageKey) is a stage of the pipeline loaded at `address`. */
export function isStageOf(key: string, address: string): boolean { return key.startsWith(`${address}/`); }

/** Which transport ran a request, as its run record says. */
export type TransportKind = 'worker-pool' | 'in-process' | 'lambda';

/** A stage that is not ready says why, and when it tries again if it will. */
export interface StageHealth {
  stage: string;
  ready: boolean;
  reason?: string;
  retryInMs?: number;
  /** Instances up and serving (worker processes with a session), where the transport keeps any. */
  workers?: number;
}

/**
 * How the executor reaches a stage. The executor only knows this interface:
 * in-process sessions, worker processes and Lambda Invoke all implement it.
 */
export interface StageTransport {
  /** Recorded in run records. */
  readonly kind: TransportKind;
  /**
   * Prepare whatever the pipeline's stages need (sessions, workers, clients).
   * `address` is what invoke, health and unload will name this loaded
   * pipeline by: its manifest's name unless given. A loader that keeps two
   * versions of one pipeline loaded at once (a registry reloading it) gives
   * each version its own, so each reaches its own stages and an unload
   * releases one version only.
   */
  load(manifest: Manifest, address?: string): Promise<void>;
  /**
   * Run one batch of one stage of the pipeline loaded at `pipeline` (its address). Rejects only for whole-batch failures.
   * `signal` is the batch's deadline (the batcher's, aborted with a 504 at the
   * stage's timeout_ms) or a client going away: the transport stops what work
   * it can when it aborts and rejects with its reason. Without one the call
   * is bounded only by what the transport itself allows. `trace` is the
   * call's trace context (the batch span's traceparent), for the stage
   * instance to continue; absent when the batch is not traced.
   */
  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal, trace?: TraceCarrier): Promise<BatchResult>;
  /**
   * The DAG the executor walks with this transport, when it differs from the
   * manifest's: a transport that runs some function stages inside a stage's
   * own instance (Lambda co-locates pre-processing with its model) leaves
   * them out and widens that stage's inputs and outputs to match. Absent:
   * the manifest as loaded.
   */
  view?(manifest: Manifest): Manifest;
  /**
   * Which function stages run beside which ONNX stage (in its worker or its
   * function) with this transport, for those who show where a stage runs
   * (the console). Absent: every function stage runs in the gateway.
   */
  placement?(manifest: Manifest): Placement;
  /** How many batches of `stage` may be in flight at once through this transport (the batcher's bound). */
  concurrency(stage: OnnxStage): number;
  /**
   * Whether each of a pipeline's stages can take batches now, and if not why;
   * stages a transport cannot lose (in-process sessions) may be left out.
   */
  health?(pipeline: string): StageHealth[];
  /**
   * Release what load() prepared for the pipeline loaded at `pipeline` (its
   * address), leaving every other's: workers it shares with another
   * pipeline's identical stage, or with another version of itself, stay.
   */
  unload?(pipeline: string): Promise<void>;
  /** Drain in-flight work and release resources. */
  close(): Promise<void>;
}
