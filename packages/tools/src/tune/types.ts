/** How a stage's sessions share the machine's cores. */
export interface Split {
  instances: number;
  threads: number;
}

/** One profiled configuration of one stage, measured alone. */
export interface Measurement extends Split {
  batch: number;
  /** Wall time of one batch call (through the worker's IPC), over the calls made. */
  batchP50Ms: number;
  batchP99Ms: number;
  /** Items per second with `instances` batches in flight back to back: instances x batch / median call time. */
  itemsPerSec: number;
  /** Batch calls measured. */
  calls: number;
}

/** A configuration that was not measured, and why. */
export interface Skipped extends Split {
  batch: number;
  reason: string;
}

export interface StageProfile {
  stage: string;
  /** Items this stage gets per request (fan-out makes it more than 1): turns items/s into requests/s. Default 1. */
  itemsPerRequest?: number;
  /** ONNX stages this one waits for (through function stages), for splitting the latency budget along paths. */
  dependsOn: string[];
  measurements: Measurement[];
  skipped: Skipped[];
  /** Why only some batch sizes were tried (e.g. items of different shapes cannot share a batch). */
  note?: string;
  current: StageSettings;
}

export interface StageSettings extends Split {
  maxSize: number;
  maxDelayMs: number;
}

export interface StageProposal extends StageSettings {
  stage: string;
  /** Measured items/s of the chosen configuration. */
  itemsPerSec: number;
  /** The same in requests/s (items/s over items per request). */
  requestsPerSec: number;
  /** The chosen configuration's p99 through the stage: max delay + wait for a busy instance + its own batch. */
  estimatedP99Ms: number;
  /** The largest sum of estimated p99s along a path of stages through this one. */
  pathP99Ms: number;
  withinBudget: boolean;
  /** Items/s of the current settings, when they were among the measurements. */
  currentItemsPerSec?: number;
  reason: string;
}

/** A function stage: not profiled (its items run concurrently in the gateway), only its batching wait is set. */
export interface FunctionStageProposal {
  stage: string;
  maxDelayMs: number;
  currentMaxDelayMs: number;
  reason: string;
}

export interface Proposal {
  budgetMs: number;
  stages: StageProposal[];
  functionStages: FunctionStageProposal[];
  /** Requests/s the slowest proposed stage sustains, and which stage that is. */
  capacity: { requestsPerSec: number; bottleneck: string };
  /** Notes that apply to the whole proposal (cores shared by stages, ...). */
  notes: string[];
}
