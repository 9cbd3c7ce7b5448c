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
import { sampleInputs } from './samples.js';
import type { ProbedTensor } from './types.js';

export interface ProbeOptions {
  dims?: Record<string, number>;
  /**
   * Bytes of probed tensors one run may return, at the largest probe batch
   * (default 256 MiB). A run may take twice the largest tensor seen so far,
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

export const DEFAULT_PROBE_BYTES = 256 * 1024 * 1024;

/** Every tensor a node makes, in topological order, except Constant values (their type is in the node itself). */
function probedNames(g: ModelGraph): string[] {
  const names = new Set<string>();
  for (const n of g.nodes) for (const o of n.produces) names.add(o);
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

/** `inputs`: the model's inputs as inspectModel reports them. */
export async function probeModel(g: ModelGraph, inputs: ValueInfo[], opts: ProbeOptions = {}): Promise<ProbeResult> {
  const names = probedNames(g);
  const batchSizes = probeBatchSizes(inputs, opts.dims);
  const budget = opts.maxBytesPerRun ?? DEFAULT_PROBE_BYTES;
  const feedsAt = batchSizes.map((batch) => Object.fromEntries(Object.entries(sampleInputs(inputs, { batch, dims: opts.dims, seed: batch })).map(([k, t]) => [k, toOrt(t)])));

  // Where each probed tensor is made: a slice needs the compute nodes up to its last tensor's producer.
  const madeAt = new Map<string, number>();
  g.nodes.forEach((n, i) => { for (const o of n.produces) madeAt.set(o, i); });
  const weightNodes = new Set<onnx.INodeProto>();
  for (const w of g.weights.values()) if (w.kind === 'node') weightNodes.add(w.node.proto);

  const seen = new Map<string, { type: ort.Tensor.Type; dims: number[][] }>();
  let runs = 0;
  let largest = 0;
  let largestRunBytes = 0;
  let take = 1;
  opts.log?.(`probing: ${names.length} tensors at batch ${batchSizes.join(' and ')}, in slices of about ${formatBytes(budget)} per run`);
  for (let start = 0; start < names.length;) {
    const slice = names.slice(start, start + take);
    const last = Math.max(-1, ...slice.map((t) => madeAt.get(t) ?? -1));
    const keep = new Set([...weightNodes, ...g.nodes.slice(0, last + 1).map((n) => n.proto)]);
    const graph: onnx.IGraphProto = { ...g.graph, node: g.graph.node.filter((n) => keep.has(n)), output: slice.map((name) => ({ name })) };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(encodeModel({ ...g.model, graph }), { graphOptimizationLevel: 'basic', intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    } catch (e) {
      throw new EnsembleError(`ONNX Runtime cannot load the model with its intermediate tensors as outputs: ${(e as Error).message}`, 'invalid_input');
    }
    let sliceBytes = 0;
    try {
      for (const [b, batch] of batchSizes.entries()) {
        let out: Record<string, ort.Tensor>;
        try {
          out = await session.run(feedsAt[b]) as Record<string, ort.Tensor>;
        } catch (e) {
          const shapes = Object.entries(feedsAt[b]).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ');
          throw new EnsembleError(`the model does not run on sample inputs ${shapes}: ${(e as Error).message}; `
            + 'give symbolic dims a size it accepts with --dim name=size', 'invalid_input');
        }
        runs++;
        for (const name of slice) {
          const t = out[name];
          if (!t) continue;
          const entry = seen.get(name) ?? { type: t.type, dims: [] };
          entry.dims[b] = t.dims.map(Number);
          seen.set(name, entry);
          if (b === batchSizes.length - 1) {
            const bytes = t.size * (bytesPerElement(datatypeOfOrt(t.type) ?? 'UINT8') ?? 1);
            sliceBytes += bytes;
            largest = Math.max(largest, bytes);
          }
        }
        for (const t of Object.values(out)) t.dispose();
      }
    } finally {
      await session.release();
    }
    largestRunBytes = Math.max(largestRunBytes, sliceBytes);
    start += slice.length;
    // Sized as if every next tensor were as large as the largest so far (the high-resolution early layers
    // usually are), and growing at most twofold, so a run of small tensors followed by large ones cannot overshoot far.
    const limit = Math.max(budget, 2 * largest);
    take = Math.max(1, Math.min(2 * take, largest > 0 ? Math.floor(limit / largest) : 2 * take));
  }
  opts.log?.(`probing: ${runs} runs, at most ${formatBytes(largestRunBytes)} of tensors each`);

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
