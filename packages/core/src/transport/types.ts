import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { Manifest, OnnxStage } from '../manifest/types.js';

/** How transports key a stage of a pipeline in their own tables. */
export function stageKey(pipeline: string, stage: string): string { return `${pipeline}/${stage}`; }

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
  /** Prepare whatever the pipeline's stages need (sessions, workers, clients). */
  load(manifest: Manifest): Promise<void>;
  /**
   * Run one batch of one stage. Rejects only for whole-batch failures.
   * `signal` is the batch's deadline (the batcher's, aborted with a 504 at the
   * stage's timeout_ms) or a client going away: the transport stops what work
   * it can when it aborts and rejects with its reason. Without one the call
   * is bounded only by what the transport itself allows.
   */
  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal): Promise<BatchResult>;
  /** How many batches of `stage` may be in flight at once through this transport (the batcher's bound). */
  concurrency(stage: OnnxStage): number;
  /**
   * Whether each of a pipeline's stages can take batches now, and if not why;
   * stages a transport cannot lose (in-process sessions) may be left out.
   */
  health?(pipeline: string): StageHealth[];
  /**
   * Release what load() prepared for one pipeline, leaving the others'
   * (workers shared with another pipeline's identical stage stay).
   */
  unload?(pipeline: string): Promise<void>;
  /** Drain in-flight work and release resources. */
  close(): Promise<void>;
}
