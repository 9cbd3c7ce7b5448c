/**
 * A copy of a model that computes only some of its outputs: the other
 * outputs, the nodes that feed nothing kept and the weights only they read
 * are dropped. A model with a dozen large outputs (side outputs of deep
 * supervision) costs a dozen times the memory per item to serve whole.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import { analyzeModel, weightClosure } from './graph.js';
import { decodeModel, encodeModel, onnx } from '../onnx/proto.js';

export function keepOutputs(bytes: Uint8Array, keep: readonly string[]): { bytes: Uint8Array; droppedNodes: number } {
  const model = decodeModel(bytes);
  if (!model.graph) throw new EnsembleError('the model has no graph', 'invalid_input');
  const graph = model.graph as onnx.GraphProto;
  const names = graph.output.map((o) => o.name ?? '');
  const unknown = keep.filter((k) => !names.includes(k));
  if (unknown.length) {
    throw new EnsembleError(`the model has no output ${unknown.map((u) => `'${u}'`).join(', ')}; its outputs are ${names.map((n) => `'${n}'`).join(', ')}`, 'usage');
  }
  const before = graph.node.length;
  graph.output = graph.output.filter((o) => keep.includes(o.name ?? ''));
  const g = analyzeModel(model);
  const read = new Set<string>(keep);
  for (const n of g.nodes) for (const i of n.consumes) read.add(i);
  const weights = weightClosure(g, [...read].filter((t) => g.weights.has(t)));
  const kept = new Set([...g.nodes, ...weights.flatMap((w) => (w.kind === 'node' ? [w.node] : []))].map((n) => n.proto));
  graph.node = graph.node.filter((n) => kept.has(n));
  const initializers = new Set(weights.flatMap((w) => (w.kind === 'initializer' ? [w.name] : [])));
  const sparse = new Set(weights.flatMap((w) => (w.kind === 'sparse' ? [w.name] : [])));
  graph.initializer = graph.initializer.filter((t) => initializers.has(t.name ?? ''));
  graph.sparseInitializer = graph.sparseInitializer.filter((s) => sparse.has(s.values?.name ?? ''));
  // IR < 4 models list initializers among the inputs: drop the ones whose initializer went.
  graph.input = graph.input.filter((v) => !g.initializerInputs.has(v.name ?? '') || initializers.has(v.name ?? ''));
  const produced = new Set(graph.node.flatMap((n) => n.output ?? []));
  graph.valueInfo = graph.valueInfo.filter((v) => produced.has(v.name ?? ''));
  return { bytes: encodeModel(model), droppedNodes: before - graph.node.length };
}
