import type { OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';
import type { TraceCarrier } from '../observability/trace-context.js';

/** Messages between the pool and a stage worker process. */
export type ToWorker =
  | { type: 'init'; stage: OnnxStage; modelPath: string }
  /** `trace`: the batch span's context, which the worker's own span continues. */
  | { type: 'run'; id: number; items: Item[]; trace?: TraceCarrier };

export type FromWorker =
  /** `sessionMs`: creating the session (a worker of an older build leaves it out). */
  | { type: 'ready'; initMs: number; sessionMs?: number }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; result: BatchResult }
  | { type: 'error'; id: number; message: string; code?: string };
