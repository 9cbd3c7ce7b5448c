/**
 * cutModel: one ONNX model in, N stage models out that compute the same
 * thing when chained by tensor name. A tensor crossing more than one cut (a
 * skip connection) goes straight from the stage that makes it to every stage
 * that reads it — the pipeline DAG wires stage 1 -> stage 3 directly, so no
 * stage passes through what it does not use.
 */
import { createHash } from 'node:crypto';
import { EnsembleError } from '@ensemble/core/errors.js';
import { inspectModel } from '../onnx/inspect.js';
import { datatypeFromOnnx, decodeModel, encodeModel, int64ToNumber, onnx } from '../onnx/proto.js';
import { bytesPerElement } from '@ensemble/core/tensor/datatypes.js';
import { didYouMean } from '@ensemble/core/manifest/suggest.js';
import { nodeCost } from './cost.js';
import { analyzeModel, type ModelGraph } from './graph.js';
import { balancedBoundaries } from './partition.js';
import { probeModel, type ProbeResult } from './probe.js';
import { buildStageModel, type StageContents } from './stage-model.js';
import { batchDimNames, sampleShape } from './samples.js';
import type { CutCrossing, CutOptions, CutPlan, CutResult, GraphTensor, StageModel, StageTensor } from './types.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Stage (0-based) of every compute node for a balanced plan: contiguous ranges of the topological order. */
function balancedAssignment(g: ModelGraph, probe: ProbeResult, costs: number[], stages: number): number[] {
  const n = g.nodes.length;
  if (stages > n) throw new EnsembleError(`cannot cut ${n} nodes into ${stages} stages`, 'invalid_input');
  // blocked[p] > 0: some tensor without a batch dim is alive across the boundary before node p.
  const delta = new Array<number>(n + 1).fill(0);
  for (const [tensor, from, to] of liveRanges(g)) {
    if (probe.tensors.get(tensor)?.batched) continue;
    delta[from + 1] += 1;
    delta[to + 1] -= 1;
  }
  const blocked: number[] = [];
  let run = 0;
  for (let p = 0; p <= n; p++) { run += delta[p]; blocked.push(run); }
  const bounds = balancedBoundaries(costs, stages, (p) => blocked[p] === 0);
  const assignment: number[] = [];
  let s = 0;
  for (let i = 0; i < n; i++) {
    while (s < bounds.length && i >= bounds[s]) s++;
    assignment.push(s);
  }
  return assignment;
}

/** [tensor, producer position, last consumer position] for every tensor made by a compute node and read later. */
function liveRanges(g: ModelGraph): [string, number, number][] {
  const last = new Map<string, number>();
  g.nodes.forEach((n, i) => { for (const t of n.consumes) if (g.producer.has(t)) last.set(t, i); });
  const out: [string, number, number][] = [];
  for (const [t, to] of last) out.push([t, g.position.get(g.producer.get(t)!)!, to]);
  return out;
}

/** Stage of every compute node for an explicit plan: stage k is what computes `at[k]` and no earlier stage has. */
function explicitAssignment(g: ModelGraph, at: string[]): number[] {
  if (at.length === 0) throw new EnsembleError('--at needs at least one tensor to cut at', 'usage');
  const assignment = new Array<number>(g.nodes.length).fill(at.length);
  const known = [...g.producer.keys()];
  at.forEach((tensor, k) => {
    const producer = g.producer.get(tensor);
    if (!producer) {
      const what = g.weights.has(tensor) ? 'is a weight (a constant), not something computed'
        : g.inputs.some((v) => v.name === tensor) ? 'is a graph input'
          : `is not a tensor of the graph${didYouMean(tensor, known, true)}`;
      throw new EnsembleError(`cannot cut at '${tensor}': it ${what}`, 'usage');
    }
    let added = 0;
    const stack = [producer];
    while (stack.length > 0) {
      const node = stack.pop()!;
      const i = g.position.get(node)!;
      if (assignment[i] <= k) continue;
      assignment[i] = k;
      added++;
      for (const t of node.consumes) {
        const p = g.producer.get(t);
        if (p) stack.push(p);
      }
    }
    if (added === 0) throw new EnsembleError(`cannot cut at '${tensor}': earlier cuts (${at.slice(0, k).join(', ')}) already compute it, so stage ${k + 1} would be empty`, 'usage');
  });
  if (!assignment.includes(at.length)) {
    throw new EnsembleError(`cutting at ${at.join(', ')} leaves nothing for stage ${at.length + 1}: the last tensor is already the output`, 'usage');
  }
  return assignment;
}

/** What each stage reads, makes and hands on, from the node -> stage assignment. */
function stageContents(g: ModelGraph, assignment: number[], count: number, probe: ProbeResult): { contents: StageContents[]; sources: Map<string, number> } {
  const contents: StageContents[] = Array.from({ length: count }, () => ({ nodes: [], inputs: [], outputs: [], extraWeights: [] }));
  g.nodes.forEach((n, i) => contents[assignment[i]].nodes.push(n));
  const stageOf = (t: string): number | undefined => {
    const p = g.producer.get(t);
    return p ? assignment[g.position.get(p)!] : undefined;
  };
  const graphInputs = new Set(g.inputs.map((v) => v.name!));
  const inputsOf = contents.map(() => new Set<string>());
  const outputsOf = contents.map(() => new Set<string>());
  const sources = new Map<string, number>();

  for (const o of g.outputs) {
    const name = o.name!;
    const s = stageOf(name);
    if (s !== undefined) outputsOf[s].add(name);
    else if (g.weights.has(name)) { outputsOf[count - 1].add(name); contents[count - 1].extraWeights!.push(name); }
    else throw new EnsembleError(`graph output '${name}' is a graph input passed straight through; there is nothing to cut`, 'invalid_input');
  }
  contents.forEach((c, s) => {
    for (const n of c.nodes) {
      for (const t of n.consumes) {
        if (g.weights.has(t)) continue;
        if (graphInputs.has(t)) { inputsOf[s].add(t); continue; }
        const from = stageOf(t)!;
        if (from === s) continue;
        if (from > s) throw new EnsembleError(`internal: stage ${s + 1} reads '${t}' from the later stage ${from + 1}`, 'internal');
        const probed = probe.tensors.get(t);
        if (!probed?.batched) {
          const shape = probed ? `[${probed.shape.join(', ')}] at batch 1` : 'unknown';
          throw new EnsembleError(`tensor '${t}' would cross from stage ${from + 1} to stage ${s + 1}, but its dim 0 is not the batch `
            + `(shape ${shape}): the pipeline splits every stage output into items along dim 0. Cut elsewhere.`, 'invalid_input');
        }
        inputsOf[s].add(t);
        outputsOf[from].add(t);
        sources.set(t, from + 1);
      }
    }
  });

  // Graph inputs and outputs in graph order, then cut tensors in the order they are made.
  const madeOrder = new Map<string, number>();
  g.nodes.forEach((n, i) => n.produces.forEach((t, j) => madeOrder.set(t, i * 1024 + j)));
  const inputOrder = g.inputs.map((v) => v.name!);
  const outputOrder = g.outputs.map((v) => v.name!);
  const ordered = (set: Set<string>, first: string[]): string[] => [
    ...first.filter((t) => set.has(t)),
    ...[...set].filter((t) => !first.includes(t)).sort((a, b) => (madeOrder.get(a) ?? 0) - (madeOrder.get(b) ?? 0)),
  ];
  contents.forEach((c, s) => {
    c.inputs = ordered(inputsOf[s], inputOrder);
    c.outputs = ordered(outputsOf[s], outputOrder);
  });
  return { contents, sources };
}

/** Type of a tensor crossing a cut: as declared when the model says, else from the probe (dim 0 the batch, the rest symbolic). */
function typeResolver(g: ModelGraph, probe: ProbeResult): (t: string) => onnx.ITypeProto {
  const first = g.inputs[0]?.type?.tensorType?.shape?.dim?.[0];
  const batchDim: onnx.TensorShapeProto.IDimension = first?.dimParam ? { dimParam: first.dimParam }
    : first?.dimValue != null && probe.batchSizes.length === 1 ? { dimValue: int64ToNumber(first.dimValue) }
      : { dimParam: 'batch' };
  const cache = new Map<string, onnx.ITypeProto>();
  return (t) => {
    const declared = g.valueInfo.get(t)?.type;
    if (declared?.tensorType?.elemType && declared.tensorType.shape) return declared;
    let type = cache.get(t);
    if (type) return type;
    const probed = probe.tensors.get(t);
    const elemType = declared?.tensorType?.elemType || probed?.elemType || producerElemType(g, t);
    if (!elemType) throw new EnsembleError(`cannot tell the element type of '${t}'`, 'internal');
    const shape = probed
      ? { dim: probed.shape.map((_, axis) => (axis === 0 && probed.batched ? batchDim : { dimParam: `${t}_d${axis}` })) }
      : undefined;
    type = { tensorType: shape ? { elemType, shape } : { elemType } };
    cache.set(t, type);
    return type;
  };
}

/** Element type from the producing node where the op fixes it (Shape -> INT64, Cast -> `to`); 0 when unknown. */
function producerElemType(g: ModelGraph, t: string): number {
  const p = g.producer.get(t)?.proto;
  if (!p) return 0;
  if (p.opType === 'Shape' || p.opType === 'Size' || p.opType === 'NonZero') return onnx.TensorProto.DataType.INT64;
  if (p.opType === 'Cast') return int64ToNumber(p.attribute?.find((a) => a.name === 'to')?.i);
  return 0;
}

/** The stage name for a prefix: `<prefix>_<index>`, made a valid stage name. */
export function stageName(prefix: string, index: number): string {
  const clean = prefix.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'stage';
  return `${clean}_${index}`;
}

/**
 * Cuts `model` (bytes, or a decoded ModelProto) by `plan`. Runs the model
 * twice in ONNX Runtime first (see probe.ts), so it is async.
 */
export async function cutModel(model: Uint8Array | onnx.ModelProto, plan: CutPlan, opts: CutOptions = {}): Promise<CutResult> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const proto = model instanceof Uint8Array ? decodeModel(model) : model;
  const info = inspectModel(bytes);
  if (info.externalData.length > 0) {
    // Stage files are written elsewhere, where the relative paths of external weights would not resolve
    // (decomposeModel and init read them into the model first: embedExternalData).
    throw new EnsembleError(`the model keeps its weights in external files (${info.externalData.join(', ')}); read them into it first (embedExternalData)`, 'invalid_input');
  }
  const g = analyzeModel(proto);
  const log = opts.log ?? (() => undefined);
  if (g.nodes.length === 0) throw new EnsembleError('the model computes nothing (no nodes besides constants); there is nothing to cut', 'invalid_input');

  const probe = await probeModel(g, info.inputs, { dims: opts.dims, log, maxBytesPerRun: opts.probeBytesPerRun });
  const batch1 = new Map(info.inputs.map((v) => [v.name, sampleShape(v, { batch: probe.batchSizes[0], dims: opts.dims, batchNames: batchDimNames(info.inputs) })]));
  const shapeOf = (t: string): number[] | undefined => probe.tensors.get(t)?.shape ?? batch1.get(t) ?? weightShape(g, t);
  const costs = g.nodes.map((n) => nodeCost(n, shapeOf, (t) => g.weights.has(t)));

  let assignment: number[];
  let count: number;
  if ('stages' in plan) {
    count = plan.stages;
    assignment = balancedAssignment(g, probe, costs, count);
  } else {
    count = plan.at.length + 1;
    assignment = explicitAssignment(g, plan.at);
  }
  const { contents, sources } = stageContents(g, assignment, count, probe);
  const typeOf = typeResolver(g, probe);
  const sourceSha256 = sha256(bytes);

  const stages: StageModel[] = contents.map((c, s) => {
    const name = stageName(opts.name ?? 'stage', s + 1);
    log(`writing stage ${s + 1}/${count} (${name}): ${c.nodes.length} node${c.nodes.length === 1 ? '' : 's'}`);
    const stageBytes = encodeModel(buildStageModel(g, c, name, { source: sourceSha256, stage: s + 1, of: count }, typeOf));
    const stageInfo = inspectModel(stageBytes);
    const inputs: StageTensor[] = c.inputs.map((t) => ({
      name: t,
      elemType: typeOf(t).tensorType?.elemType ?? 0,
      from: sources.has(t) ? sources.get(t)! : 'input',
    }));
    return {
      name,
      index: s + 1,
      bytes: stageBytes,
      sha256: sha256(stageBytes),
      inputs,
      outputs: c.outputs,
      nodeCount: stageInfo.nodeCount,
      parameterCount: stageInfo.parameterCount,
      weightBytes: stageInfo.weightBytes,
      estimatedFlops: c.nodes.reduce((sum, n) => sum + costs[g.position.get(n)!], 0),
    };
  });
  const io = (v: onnx.IValueInfoProto): GraphTensor => {
    const t = typeOf(v.name!).tensorType;
    const shape = t?.shape ? (t.shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? int64ToNumber(d.dimValue) : '')) : null;
    return { name: v.name!, elemType: t?.elemType ?? 0, shape };
  };
  const cuts: CutCrossing[] = Array.from({ length: count - 1 }, (_, k) => ({ after: k + 1, tensors: [], bytesPerItem: 0 }));
  for (const s of stages) {
    for (const t of s.inputs) {
      if (t.from === 'input') continue;
      const probed = probe.tensors.get(t.name);
      const datatype = datatypeFromOnnx(t.elemType) ?? 'BYTES';
      const itemShape = probed ? probed.shape.slice(1) : [];
      const bytesPerItem = itemShape.reduce((a, b) => a * b, 1) * (bytesPerElement(datatype) ?? 0);
      // A skip tensor travels straight to its reader, but it is made before and read after every cut in between.
      for (let k = t.from; k < s.index; k++) {
        cuts[k - 1].tensors.push({ name: t.name, datatype, itemShape, bytesPerItem, from: t.from, to: s.index });
        cuts[k - 1].bytesPerItem += bytesPerItem;
      }
    }
  }
  return { stages, cuts, inputs: g.inputs.map(io), outputs: g.outputs.map(io), sourceSha256, prunedNodes: g.prunedNodes };
}

function weightShape(g: ModelGraph, t: string): number[] | undefined {
  const w = g.weights.get(t);
  if (!w) return undefined;
  const dims = (d: onnx.ITensorProto | null | undefined) => d?.dims?.map((x) => int64ToNumber(x));
  if (w.kind === 'initializer') return dims(w.tensor);
  if (w.kind === 'sparse') return w.sparse.dims?.map((x) => int64ToNumber(x));
  const value = w.node.proto.attribute?.find((a) => a.name === 'value');
  return dims(value?.t);
}

