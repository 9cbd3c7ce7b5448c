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
  /** Items per second with `instances` batches in flight back to back. */
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
  /** The chosen configuration's p99 through the stage: max delay + wait for a busy instance + its own batch. */
  estimatedP99Ms: number;
  /** This stage's share of the pipeline's p99 budget. */
  budgetMs: number;
  withinBudget: boolean;
  /** Items/s of the current settings, when they were among the measurements. */
  currentItemsPerSec?: number;
  reason: string;
}

export interface Proposal {
  budgetMs: number;
  stages: StageProposal[];
  /** Notes that apply to the whole proposal (cores shared by stages, ...). */
  notes: string[];
}
