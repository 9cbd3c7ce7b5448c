/**
 * One stage as an ONNX model of its own: its share of the nodes, a copy of
 * every weight they read, the original model's opsets, IR version and
 * metadata, and inputs/outputs typed so ONNX Runtime and the manifest checker
 * can see what crosses the cut.
 */
import { onnx } from '../onnx/proto.js';
import { weightClosure, type GraphNode, type ModelGraph } from './graph.js';

/** Metadata key on every stage model: where it came from, so `ensemble verify` can find a cut's stages. */
export const PROVENANCE_KEY = 'ensemble.decompose';

export interface Provenance {
  /** sha256 of the whole model. */
  source: string;
  /** 1-based. */
  stage: number;
  of: number;
}

export interface StageContents {
  /** Compute nodes of the stage, in topological order. */
  nodes: GraphNode[];
  /** Tensors fed from outside (graph inputs, earlier stages), in order. */
  inputs: string[];
  /** Tensors it hands on (graph outputs, what later stages read), in order. */
  outputs: string[];
  /** Graph outputs that are weights (a Constant as output) also come from here. */
  extraWeights?: string[];
}

export function buildStageModel(
  g: ModelGraph,
  stage: StageContents,
  name: string,
  provenance: Provenance,
  typeOf: (tensor: string) => onnx.ITypeProto,
): onnx.IModelProto {
  const read = new Set<string>(stage.extraWeights ?? []);
  for (const n of stage.nodes) for (const i of n.consumes) read.add(i);
  const weights = weightClosure(g, [...read].filter((t) => g.weights.has(t)));

  const weightNodes = weights.flatMap((w) => (w.kind === 'node' ? [w.node] : []));
  const nodes = [...new Set(weightNodes)].sort((a, b) => a.rank - b.rank).concat(stage.nodes);
  const initializers = weights.flatMap((w) => (w.kind === 'initializer' ? [w.tensor] : []));
  const sparse = weights.flatMap((w) => (w.kind === 'sparse' ? [w.sparse] : []));

  const declared = (tensor: string): onnx.IValueInfoProto => {
    const original = g.valueInfo.get(tensor);
    const type = typeOf(tensor);
    return original?.type === type ? original : { name: tensor, type, docString: original?.docString ?? '' };
  };
  const inputs = stage.inputs.map(declared);
  // IR < 4 models list initializers among the inputs; keep doing so for the ones this stage holds.
  for (const w of initializers) {
    const v = g.initializerInputs.get(w.name ?? '');
    if (v) inputs.push(v);
  }
  const outputs = stage.outputs.map(declared);

  const boundary = new Set([...stage.inputs, ...stage.outputs]);
  const inside = new Set(nodes.flatMap((n) => n.produces));
  const valueInfo = g.graph.valueInfo.filter((v) => inside.has(v.name ?? '') && !boundary.has(v.name ?? ''));

  const m = g.model;
  return {
    irVersion: m.irVersion,
    opsetImport: m.opsetImport,
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    domain: m.domain,
    modelVersion: m.modelVersion,
    docString: m.docString,
    metadataProps: [...m.metadataProps, { key: PROVENANCE_KEY, value: JSON.stringify(provenance) }],
    functions: m.functions,
    graph: {
      name,
      docString: g.graph.docString,
      node: nodes.map((n) => n.proto),
      initializer: initializers,
      sparseInitializer: sparse,
      input: inputs,
      output: outputs,
      valueInfo,
    },
  };
}

/** The provenance a stage model carries, or undefined for a model the tool did not make. */
export function readProvenance(model: onnx.IModelProto): Provenance | undefined {
  const entry = model.metadataProps?.find((p) => p.key === PROVENANCE_KEY);
  if (!entry?.value) return undefined;
  try {
    const p = JSON.parse(entry.value) as Provenance;
    return typeof p.source === 'string' && Number.isInteger(p.stage) && Number.isInteger(p.of) ? p : undefined;
  } catch {
    return undefined;
  }
}
