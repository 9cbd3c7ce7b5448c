import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { Manifest } from '../manifest/types.js';

/**
 * How the executor reaches a stage. The executor only knows this interface:
 * in-process sessions, worker threads and Lambda Invoke all implement it.
 */
export interface StageTransport {
  /** 'local', 'worker', 'lambda': recorded in run records. */
  readonly kind: string;
  /** Prepare whatever the pipeline's stages need (sessions, workers, clients). */
  load(manifest: Manifest): Promise<void>;
  /** Run one batch of one stage. Rejects only for whole-batch failures. */
  invoke(pipeline: string, stage: string, items: Item[], signal?: AbortSignal): Promise<BatchResult>;
  /** Drain in-flight work and release resources. */
  close(): Promise<void>;
}
