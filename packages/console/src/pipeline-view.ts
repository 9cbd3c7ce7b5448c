import type { Manifest, StageSpec, TensorSpec } from '@ensemble/core/manifest/types.js';
import type { PipelineRegistry } from '@ensemble/core/pipelines/registry.js';

/**
 * `GET /console/api/pipelines/{name}`: what the console draws a pipeline
 * from. The graph is the manifest's (stages name the tensors they read and
 * write; the edges follow), the live part is the executor's and the
 * transport's state at this instant.
 */
export interface PipelineView {
  name: string;
  version: string;
  description?: string;
  ready: boolean;
  /** Why it is not ready, when it is not. */
  reason?: string;
  inputs: TensorView[];
  outputs: TensorView[];
  stages: StageView[];
  /** Lineage depth of every tensor: 0 per request row, +1 after each fan-out stage. */
  levels: Record<string, number>;
}

export interface TensorView {
  name: string;
  datatype: string;
  shape: number[];
  /** For an output the executor derives (a row_index or lengths companion): the output it describes. */
  derivedFrom?: string;
}

export interface StageView {
  name: string;
  kind: 'onnx' | 'function';
  fanout: boolean;
  /** Stage-local name -> pipeline tensor. */
  inputs: Record<string, string>;
  outputs: Record<string, string>;
  /** The stage runs only for items whose `tensor` is true; the others take the `otherwise` tensors as its outputs. */
  when?: { tensor: string; otherwise: Record<string, string> };
  batch: { maxSize: number; maxDelayMs: number; maxQueue: number };
  scale: { instances: number; threads: number; memoryMb: number };
  /**
   * A function stage the transport runs beside an ONNX stage (in its worker
   * process or its Lambda function): which one, and whether after its model.
   * Absent: it runs in the gateway (or it is an ONNX stage).
   */
  runsWith?: { stage: string; after: boolean };
  live: StageLive;
}

export interface StageLive {
  /** Items waiting in the stage's queue (all requests). */
  queued: number;
  /** Batches being run now. */
  inFlight: number;
  ready: boolean;
  reason?: string;
  /** Instances up (worker processes with a session), where the transport keeps any. */
  workers?: number;
}

/** The view of a known pipeline; its live part is empty (zeros) while it is not serving. */
export function pipelineView(registry: PipelineRegistry, manifest: Manifest): PipelineView {
  const status = registry.status(manifest.name);
  let load: Record<string, { queued: number; inFlight: number }> = {};
  try {
    load = registry.get(manifest.name).executor.stageLoad();
  } catch {
    // Not serving (loading, failed, unloaded): the graph is still worth drawing.
  }
  const health = new Map(status.stages.map((h) => [h.stage, h]));
  const placement = registry.transport.placement?.(manifest);
  const runsWith = new Map(placement?.groups.flatMap((g) => g.colocated.filter((c) => c.mode === 'moved')
    .map((c) => [c.stage, { stage: g.onnx, after: c.after === true }] as const)) ?? []);
  const view: PipelineView = {
    name: manifest.name,
    version: manifest.version,
    ready: status.ready,
    inputs: manifest.inputs.map(tensorView),
    outputs: manifest.outputs.map(tensorView),
    stages: manifest.order.map((n) => manifest.stages.find((s) => s.name === n)!).map((s) => stageView(s, load[s.name], health.get(s.name), status.ready, runsWith.get(s.name))),
    levels: manifest.levels,
  };
  if (manifest.description) view.description = manifest.description;
  if (status.reason !== undefined) view.reason = status.reason;
  return view;
}

function tensorView(t: TensorSpec): TensorView {
  const v: TensorView = { name: t.name, datatype: t.datatype, shape: t.shape };
  if (t.derived) v.derivedFrom = t.derived.of;
  return v;
}

function stageView(
  s: StageSpec,
  load: { queued: number; inFlight: number } | undefined,
  health: { ready: boolean; reason?: string; workers?: number } | undefined,
  pipelineReady: boolean,
  runsWith: StageView['runsWith'],
): StageView {
  const live: StageLive = { queued: load?.queued ?? 0, inFlight: load?.inFlight ?? 0, ready: health?.ready ?? pipelineReady };
  if (health?.reason !== undefined) live.reason = health.reason;
  if (health?.workers !== undefined) live.workers = health.workers;
  const view: StageView = {
    name: s.name,
    kind: s.kind,
    fanout: s.kind === 'function' && s.fanout,
    inputs: s.inputs,
    outputs: s.outputs,
    batch: { maxSize: s.batch.maxSize, maxDelayMs: s.batch.maxDelayMs, maxQueue: s.batch.maxQueue },
    scale: { instances: s.scale.instances, threads: s.scale.threads, memoryMb: s.scale.memoryMb },
    live,
  };
  if (s.when) view.when = { tensor: s.when.tensor, otherwise: s.when.otherwise };
  if (runsWith) view.runsWith = runsWith;
  return view;
}
