import type { OnnxStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult } from '../runtime/types.js';

/** Messages between the pool and a stage worker process. */
export type ToWorker =
  | { type: 'init'; stage: OnnxStage; modelPath: string }
  | { type: 'run'; id: number; items: Item[] };

export type FromWorker =
  /** `sessionMs`: creating the session (a worker of an older build leaves it out). */
  | { type: 'ready'; initMs: number; sessionMs?: number }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; result: BatchResult }
  | { type: 'error'; id: number; message: string; code?: string };
