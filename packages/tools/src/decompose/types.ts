/**
 * Types of the decompose tool: how to cut a model (plan), what is known about
 * each of its tensors after running it once (probe), and what comes out (one
 * ONNX model per stage, wired by tensor name).
 */

/** `{ stages: N }`: N stages of about equal cost. `{ at: [...] }`: stage k ends with the tensors that compute `at[k]`. */
export type CutPlan = { stages: number } | { at: string[] };

export interface CutOptions {
  /** Sizes for symbolic input dims other than the batch dim (default 1), e.g. { 'p2o.DynamicDimension.1': 320 }. */
  dims?: Record<string, number>;
  /** Stage names are `<name>_1`, `<name>_2`, ... (default: 'stage'). */
  name?: string;
  /** Progress lines for long work. */
  log?: (line: string) => void;
  /** Bytes of intermediate tensors one probe run may return (see probe.ts; default 256 MiB). */
  probeBytesPerRun?: number;
}

/** What one run of the whole model (at batch 1, and at 2 to find the batch dim) tells about a tensor. */
export interface ProbedTensor {
  /** ONNX element type code. */
  elemType: number;
  /** Shape at the probe's batch size 1 (the cost estimate uses it). */
  shape: number[];
  /**
   * Dim 0 follows the batch size (1 then 2). Only such tensors may cross a
   * cut: the pipeline splits every stage output into items along dim 0.
   */
  batched: boolean;
}

export interface StageTensor {
  /** The tensor's name in the ONNX graph (kept as is in the stage models). */
  name: string;
  /** ONNX element type code. */
  elemType: number;
  /** Where it comes from: a graph input of the whole model, or the stage (1-based) that makes it. */
  from: 'input' | number;
}

export interface GraphTensor {
  name: string;
  /** ONNX element type code. */
  elemType: number;
  /** Dims: a size, or the symbolic name; null when even the rank is unknown. */
  shape: (number | string)[] | null;
}

export interface StageModel {
  /** `<name>_<index>`, a valid stage name. */
  name: string;
  /** 1-based. */
  index: number;
  /** The encoded stage model. */
  bytes: Uint8Array;
  sha256: string;
  inputs: StageTensor[];
  /** Outputs: graph outputs of the whole model and tensors later stages read. */
  outputs: string[];
  /** Nodes of this stage, weight-making nodes (Constant, constant-only subgraphs) included. */
  nodeCount: number;
  parameterCount: number;
  weightBytes: number;
  /** The estimate the balancing used (see cost.ts). */
  estimatedFlops: number;
}

/** What crosses the cut after stage `after`: every tensor made at or before it and read after it. */
export interface CutCrossing {
  /** 1-based: the cut between stage `after` and `after + 1`. */
  after: number;
  tensors: { name: string; datatype: string; itemShape: number[]; bytesPerItem: number; from: number; to: number }[];
  bytesPerItem: number;
}

export interface CutResult {
  stages: StageModel[];
  /** One entry per cut, sizes per item (one row of dim 0) at the sample dims. */
  cuts: CutCrossing[];
  /** Whole-model inputs and outputs, in graph order. */
  inputs: GraphTensor[];
  outputs: GraphTensor[];
  /** sha256 of the model that was cut. */
  sourceSha256: string;
  /** Nodes that feed no graph output and were dropped. */
  prunedNodes: number;
}
