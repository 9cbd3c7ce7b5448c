/**
 * Runs the whole model once per probe batch size with every intermediate
 * tensor added as a graph output, and reads what ONNX Runtime computed: the
 * element type and shape of each tensor. That is how the tool knows types
 * where the model declares none (paddle2onnx writes no value_info), sizes the
 * cost estimate, and tells batch-major tensors (dim 0 follows the batch) from
 * shape helpers that must not cross a cut.
 */
import * as ort from 'onnxruntime-node';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { ValueInfo } from '../onnx/inspect.js';
import { datatypeToOnnx, encodeModel, onnx } from '../onnx/proto.js';
import { datatypeOfOrt, toOrt } from '@ensemble/core/runtime/ort-tensors.js';
import type { ModelGraph } from './graph.js';
import { sampleInputs } from './samples.js';
import type { ProbedTensor } from './types.js';

export interface ProbeOptions {
  dims?: Record<string, number>;
  log?: (line: string) => void;
}

export interface ProbeResult {
  tensors: Map<string, ProbedTensor>;
  /** Batch sizes probed: [1, 2] when dim 0 of the inputs is symbolic, else the fixed size. */
  batchSizes: number[];
}

/** Every tensor a node makes, except Constant values (their type is in the node itself). */
function probedNames(g: ModelGraph): string[] {
  const names = new Set<string>();
  for (const n of g.nodes) for (const o of n.produces) names.add(o);
  for (const w of g.weights.values()) {
    if (w.kind === 'node' && w.node.proto.opType !== 'Constant') for (const o of w.node.produces) names.add(o);
  }
  return [...names];
}

/** `inputs`: the model's inputs as inspectModel reports them. */
export async function probeModel(g: ModelGraph, inputs: ValueInfo[], opts: ProbeOptions = {}): Promise<ProbeResult> {
  const names = probedNames(g);
  const declared = new Set(g.outputs.map((o) => o.name!));
  // A shallow copy of the graph with more outputs; nothing of the original is changed.
  const graph: onnx.IGraphProto = { ...g.graph, output: [...g.graph.output, ...names.filter((n) => !declared.has(n)).map((name) => ({ name }))] };
  const bytes = encodeModel({ ...g.model, graph });
  const dynamicBatch = inputs.length > 0 && inputs.every((v) => typeof v.shape[0] === 'string');
  const batchSizes = dynamicBatch ? [1, 2] : [(inputs[0]?.shape[0] as number | undefined) ?? 1];

  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (e) {
    throw new EnsembleError(`ONNX Runtime cannot load the model with its intermediate tensors as outputs: ${(e as Error).message}`, 'invalid_input');
  }
  const runs: Record<string, ort.Tensor>[] = [];
  try {
    for (const batch of batchSizes) {
      opts.log?.(`probing: running the whole model at batch ${batch} with ${names.length} tensors as outputs`);
      const feeds = Object.fromEntries(Object.entries(sampleInputs(inputs, { batch, dims: opts.dims, seed: batch })).map(([k, t]) => [k, toOrt(t)]));
      try {
        runs.push(await session.run(feeds) as Record<string, ort.Tensor>);
      } catch (e) {
        const shapes = Object.entries(feeds).map(([k, t]) => `${k} [${t.dims.join(', ')}]`).join(', ');
        throw new EnsembleError(`the model does not run on sample inputs ${shapes}: ${(e as Error).message}; `
          + 'give symbolic dims a size it accepts with --dim name=size', 'invalid_input');
      }
    }
  } finally {
    await session.release();
  }

  const tensors = new Map<string, ProbedTensor>();
  for (const name of names) {
    const first = runs[0][name];
    if (!first) continue;
    const datatype = datatypeOfOrt(first.type);
    if (!datatype) throw new EnsembleError(`tensor '${name}' has type ${first.type}, which the pipeline cannot carry`, 'invalid_input');
    const batched = runs.every((r, i) => r[name] && r[name].dims.length > 0 && r[name].dims[0] === batchSizes[i]);
    tensors.set(name, { elemType: datatypeToOnnx(datatype), shape: first.dims.map(Number), batched });
  }
  for (const r of runs) for (const t of Object.values(r)) t.dispose();
  return { tensors, batchSizes };
}
