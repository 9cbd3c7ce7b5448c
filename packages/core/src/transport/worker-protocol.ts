import type { Manifest, OnnxStage } from '../manifest/types.js';
import type { StageGroup } from '../placement/placement.js';
import type { ColocatedRun } from '../runtime/types.js';
import type { TraceCarrier } from '../observability/trace-context.js';
import type { GroupMeta, TensorMeta } from './tensor-frames.js';

/**
 * A stage worker has two channels to the pool: the IPC channel (fd 3) for
 * starting it, and a data pipe (DATA_FD) for its batches, as frames
 * (frames.ts) whose payload holds the tensors' raw bytes (tensor-frames.ts).
 * Tensors never cross the IPC channel, whose v8 serializer copies them
 * several times on each side.
 */
export const DATA_FD = 4;

/**
 * Messages on the IPC channel. `colocated`: the function stages the pool's
 * placement runs in this worker around the model (placement/placement.ts),
 * once for each pipeline that shares the worker (its context: the stages
 * see its name and folder); batches then carry the group's inputs by
 * pipeline name and are answered item by item.
 */
export type ToWorker =
  | { type: 'init'; stage: OnnxStage; modelPath: string; colocated?: ContextInit[] }
  /** One more pipeline shares the worker: load its co-located stages, and say whether they loaded. */
  | { type: 'context'; context: ContextInit };

/** The co-located stages' specs (only those: the rest of the manifest stays in the gateway), and where they come from. */
export interface ColocatedInit {
  manifest: Pick<Manifest, 'name' | 'dir' | 'stages'>;
  group: StageGroup;
}

/** A context as the pool numbers it (ids stay as contexts come and go). */
export interface ContextInit extends ColocatedInit {
  id: number;
}

export type FromWorker =
  /** `sessionMs`: creating the session (a worker of an older build leaves it out). */
  | { type: 'ready'; initMs: number; sessionMs?: number }
  | { type: 'init-error'; message: string }
  | { type: 'context-ready'; id: number }
  | { type: 'context-error'; id: number; message: string };

/**
 * A batch to run: every model input's tensors of the `n` items back to back
 * (a per-request input once: the batcher only batches items that agree on it).
 * `trace`: the batch span's context, which the worker's own span continues.
 */
export interface RunHeader {
  type: 'run';
  id: number;
  n: number;
  inputs: Record<string, GroupMeta>;
  trace?: TraceCarrier;
  /**
   * Run on a session with one intra-op thread (made on the first such batch)
   * instead of the stage's `threads`: the pool found the machine's cores
   * taken by other batches. Only for stages with more than one thread.
   */
  narrow?: boolean;
  /** With co-located stages: whose (its context's id), and that context when the worker may not have it yet. */
  context?: number;
  colocated?: ContextInit;
}

/** What the worker measured of a batch (ms), beside the outputs. */
export interface WorkerTimes {
  /** Wall time of session.run; with co-located stages, of them and the session's runs (as a stage function reports its group). */
  computeMs: number;
  /** With co-located stages: the wall time of the session's runs alone. */
  sessionMs?: number;
  /** CPU time of the worker process (every thread) while session.run ran: the model's own CPU. */
  computeCpuMs: number;
  /** CPU time of the worker process over the batch, from the frame read to the answer written. */
  cpuMs: number;
  peakRssBytes: number;
  /** From the run frame read to the answer written. */
  servedMs: number;
  /** Of servedMs, what was not session.run: reading the tensors out of the frame, stacking, writing the answer. */
  serializeMs: number;
  /** The worker's reader on the run frame (header parsing; the payload was read in place). */
  readMs: number;
  /** Intra-op threads of the session that ran the batch (a worker of an older build leaves it out). */
  threads?: number;
  /** CPU time of the worker process in its co-located function stages (a worker with none leaves it out). */
  colocatedCpuMs?: number;
  /** Each co-located stage's part of the batch. */
  colocated?: ColocatedRun[];
}

/** One item's answer from a worker with co-located stages: its outputs, or why it alone failed. */
export type ItemAnswer =
  | { ok: true; outputs: Record<string, TensorMeta> }
  | { ok: false; error: string; code?: string };

/**
 * The answer to a run: the outputs whole (the pool splits them per item), or
 * with co-located stages each item's own (`items`, `outputs` empty), or why
 * the batch failed.
 */
export type ResultHeader =
  | ({ type: 'result'; id: number; outputs: Record<string, TensorMeta>; items?: ItemAnswer[] } & WorkerTimes)
  | { type: 'error'; id: number; message: string; code?: string };
