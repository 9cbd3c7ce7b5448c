/**
 * Runs the model in ONNX Runtime with its intermediate tensors added as
 * graph outputs, once per probe batch size, and reads what ONNX Runtime
 * computed: the element type and shape of each tensor. That is how the tool
 * knows types where the model declares none (paddle2onnx writes no
 * value_info), sizes the cost estimate, and tells batch-major tensors (dim 0
 * follows the batch) from shape helpers that must not cross a cut.
 *
 * Memory is bounded by probing in slices. A tensor that is a graph output
 * cannot be freed or reused by ONNX Runtime until the run returns, and is
 * then copied into JavaScript, so exposing every tensor at once holds all
 * activations of a run twice (9.5 GB on a 44 MB 1024x1024 segmentation model).
 * Each slice is a run of the prefix of the graph that computes a bounded
 * number of bytes of consecutive tensors (in topological order), and only
 * their shapes are kept.
 */
import * as ort from 'onnxruntime-node';
import { EnsembleError } from '@ensemble/core/errors.js';
import { bytesPerElement } from '@ensemble/core/tensor/datatypes.js';
import type { ValueInfo } from '../onnx/inspect.js';
import { formatBytes } from '../util/progress.js';
import { datatypeToOnnx, encodeModel, type onnx } from '../onnx/proto.js';
import { datatypeOfOrt, toOrt } from '@ensemble/core/runtime/ort-tensors.js';
import type { ModelGraph } from './graph.js';
import { buildStageModel } from './stage-model.js';
import { sampleInputs } from './samples.js';
import type { ProbedTensor } from './types.js';

export interface ProbeOptions {
  dims?: Record<string, number>;
  /**
   * Bytes of probed tensors one run may return, at the largest probe batch
   * (default 64 MiB). A run may take twice the largest tensor seen so far,
   * since an ordinary inference holds the input and output of its largest node anyway.
   */
  maxBytesPerRun?: number;
  log?: (line: string) => void;
}

export interface ProbeResult {
  tensors: Map<string, ProbedTensor>;
  /** Batch sizes probed: [1, 2] when dim 0 of the inputs is symbolic and not fixed by name, else the fixed size. */
  batchSizes: number[];
  /** Session runs the probe took (slices x batch sizes). */
  runs: number;
  /** The most bytes of probed tensors one run returned. */
  largestRunBytes: number;
}

export const DEFAULT_PROBE_BYTES = 64 * 1024 * 1024;

/** Outputs of weight nodes that are not Constant (a Cast of a constant shape): folded by ONNX Runtime, probed once. */
function foldedWeights(g: ModelGraph): string[] {
  const names = new Set<string>();
  for (const w of g.weights.values()) {
    if (w.kind === 'node' && w.node.proto.opType !== 'Constant') for (const o of w.node.produces) names.add(o);
  }
  return [...names];
}

/** The batch sizes to probe: 1 and 2 when every input's dim 0 is symbolic and no --dim fixes it. */
export function probeBatchSizes(inputs: ValueInfo[], dims: Record<string, number> = {}): number[] {
  const first = inputs[0]?.shape[0];
  if (typeof first === 'string' && first !== '' && dims[first] !== undefined) return [dims[first]];
  const dynamicBatch = inputs.length > 0 && inputs.every((v) => typeof v.shape[0] === 'string');
  return dynamicBatch ? [1, 2] : [typeof first === 'number' ? first : 1];
}

const bytesOfOrt = (t: ort.Tensor): number => t.size * (bytesPerElement(datatypeOfOrt(t.type) ?? 'UINT8') ?? 1);

/**
 * `inputs`: the model's inputs as inspectModel reports them.
 *
 * The nodes (in topological order) run in consecutive slices, each its own
 * small model fed with the graph inputs and with the tensors earlier slices
 * made that it or a later slice still reads (what an ordinary run keeps alive
 * too); every tensor a slice makes is one of its outputs, its shape is read,
 * and it is freed unless a later slice reads it. All slices together compute
 * the model once per probe batch size.
 */
export async function probeModel(g: ModelGraph, inputs: ValueInfo[], opts: ProbeOptions = {}): Promise<ProbeResult> {
  const folded = foldedWeights(g);
  const batchSizes = probeBatchSizes(inputs, opts.dims);
  const budget = opts.maxBytesPerRun ?? DEFAULT_PROBE_BYTES;
  const graphInputs = new Set(g.inputs.map((v) => v.name!));
  const lastUse = new Map<string, number>();
  g.nodes.forEach((n, i) => { for (const t of n.consumes) if (g.producer.has(t)) lastUse.set(t, i); });
  const count = g.nodes.length;
  opts.log?.(`probing: ${count} nodes at batch ${batchSizes.join(' and ')}, in slices of about ${formatBytes(budget)} of tensors per run`);

  const seen = new Map<string, { type: ort.Tensor.Type; dims: number[][] }>();
  /** Bytes each node's outputs took at the first batch size: what sizes the slices at the next ones. */
  const nodeBytes = new Array<number>(count).fill(0);
  let runs = 0;
  let largestRunBytes = 0;
  for (const [b, batch] of batchSizes.entries()) {
    const feeds = Object.fromEntries(Object.entries(sampleInputs(inputs, { batch, dims: opts.dims, seed: batch })).map(([k, t]) => [k, toOrt(t)]));
    const scale = batch / batchSizes[0];
    const live = new Map<string, ort.Tensor>();
    let largest = 0;
    let take = 1;
    for (let start = 0; start < count || (start === 0 && folded.length > 0);) {
      let end = start;
      if (b === 0) {
        end = Math.min(count, start + take);
      } else {
        // Sizes are known from the first batch size; dim 0 scales with the batch for the tensors that matter.
        let bytes = 0;
        while (end < count && (end === start || bytes + nodeBytes[end] * scale <= budget)) bytes += nodeBytes[end++] * scale;
      }
      const nodes = g.nodes.slice(start, end);
      const made = nodes.flatMap((n) => n.produces);
      const extra = start === 0 ? folded : [];
      const reads = new Set(nodes.flatMap((n) => n.consumes));
      const sliceInputs = [...new Set([...reads].filter((t) => graphInputs.has(t) || live.has(t)))];
      const typeOf = (t: string): onnx.ITypeProto => {
        const v = live.get(t);
        if (v) return { tensorType: { elemType: datatypeToOnnx(datatypeOfOrt(v.type)!), shape: { dim: v.dims.map((d) => ({ dimValue: d })) } } };
        return g.valueInfo.get(t)?.type ?? {};
      };
      const model = buildStageModel(g, { nodes, inputs: sliceInputs, outputs: [], extraWeights: extra }, 'probe', { source: '', stage: 0, of: 0 }, typeOf);
      model.graph!.output = [...made, ...extra].map((name) => ({ name }));
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
      } catch (e) {
        throw new EnsembleError(`ONNX Runtime cannot load the model with its intermediate tensors as outputs: ${(e as Error).message}`, 'invalid_input');
      }
      let out: Record<string, ort.Tensor>;
      try {
        out = await session.run(Object.fromEntries(sliceInputs.map((t) => [t, feeds[t] ?? live.get(t)!]))) as Record<string, ort.Tensor>;
      } catch (e) {
        const shapes = Object.entries(feeds).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ');
        throw new EnsembleError(`the model does not run on sample inputs ${shapes}: ${(e as Error).message}; `
          + 'give symbolic dims a size it accepts with --dim name=size', 'invalid_input');
      } finally {
        await session.release();
      }
      runs++;
      let sliceBytes = 0;
      for (const [name, t] of Object.entries(out)) {
        const entry = seen.get(name) ?? { type: t.type, dims: [] };
        entry.dims[b] = t.dims.map(Number);
        seen.set(name, entry);
        const bytes = bytesOfOrt(t);
        sliceBytes += bytes;
        largest = Math.max(largest, bytes);
        const at = g.producer.get(name);
        if (b === 0 && at) nodeBytes[g.position.get(at)!] += bytes;
        if ((lastUse.get(name) ?? -1) >= end) live.set(name, t);
        else t.dispose();
      }
      for (const [name, t] of live) {
        if ((lastUse.get(name) ?? -1) < end) { t.dispose(); live.delete(name); }
      }
      largestRunBytes = Math.max(largestRunBytes, sliceBytes);
      // Sized as if every next tensor were as large as the largest so far (the high-resolution early layers
      // usually are), and growing at most twofold, so small tensors followed by large ones cannot overshoot far.
      const limit = Math.max(budget, 2 * largest);
      take = Math.max(1, Math.min(2 * take, largest > 0 ? Math.floor(limit / largest) : 2 * take));
      if (end === start) break;
      start = end;
    }
    for (const t of live.values()) t.dispose();
  }
  opts.log?.(`probing: ${runs} runs, at most ${formatBytes(largestRunBytes)} of tensors each`);

  const names = [...g.nodes.flatMap((n) => n.produces), ...folded];
  const tensors = new Map<string, ProbedTensor>();
  for (const name of names) {
    const s = seen.get(name);
    if (!s || !s.dims[0]) continue;
    const datatype = datatypeOfOrt(s.type);
    if (!datatype) throw new EnsembleError(`tensor '${name}' has type ${s.type}, which the pipeline cannot carry`, 'invalid_input');
    const batched = batchSizes.every((batch, i) => s.dims[i] !== undefined && s.dims[i].length > 0 && s.dims[i][0] === batch);
    tensors.set(name, { elemType: datatypeToOnnx(datatype), shape: s.dims[0], batched });
  }
  return { tensors, batchSizes, runs, largestRunBytes };
}
