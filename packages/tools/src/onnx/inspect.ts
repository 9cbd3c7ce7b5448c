/**
 * What a model declares about itself, read from the protobuf without starting
 * ONNX Runtime: its inputs and outputs (with symbolic dims), its size and its
 * opset. The manifest validator checks stages against it; the decompose tool
 * sizes its cuts with it.
 */
import { readFileSync } from 'node:fs';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Datatype } from '@ensemble/core/tensor/types.js';
import type { Dim } from './builder.js';
import { datatypeFromOnnx, decodeModel, int64ToNumber, onnx, onnxBytesPerElement, OnnxDataType } from './proto.js';

export interface ValueInfo {
  name: string;
  /** null when the element type has no Open Inference Protocol datatype (BFLOAT16, ...) or the value is not a tensor. */
  datatype: Datatype | null;
  /** The raw ONNX element type code (0 when not a tensor). */
  elemType: number;
  /**
   * Dims as declared: a number for a fixed size, the dim_param name for a
   * symbolic one, '' for a dim with neither (as onnxruntime's inputMetadata does). Empty when the rank is unknown
   * (see rankKnown) or the value is a scalar.
   */
  shape: Dim[];
  rankKnown: boolean;
  /** What the value is: a tensor, or one of ONNX's other types (sequence, map, optional, sparse tensor). */
  kind: 'tensor' | 'sequence' | 'map' | 'optional' | 'sparse tensor' | 'unknown';
}

export interface ModelInfo {
  /** Graph inputs that are not initializers, i.e. what a caller must feed. */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Nodes of the main graph (subgraphs of If/Loop are not counted). */
  nodeCount: number;
  /**
   * Elements in the weights: initializers, sparse initializers (stored values)
   * and Constant nodes — exporters such as paddle2onnx keep every weight in
   * Constant nodes and have no initializers at all.
   */
  parameterCount: number;
  /** Bytes of those weights as stored (raw_data size, typed fields at element size, external lengths). */
  weightBytes: number;
  /** Version of the default (ai.onnx) operator set. */
  opsetVersion: number;
  irVersion: number;
  producer: string;
  /** Files named by initializers stored as external data, relative to the model file. */
  externalData: string[];
}

const UNKNOWN_DIM = '';

function valueInfo(v: onnx.IValueInfoProto): ValueInfo {
  const name = v.name ?? '';
  const tensor = v.type?.tensorType;
  if (!tensor) {
    const t = v.type;
    const kind = t?.sequenceType ? 'sequence' : t?.mapType ? 'map' : t?.optionalType ? 'optional' : t?.sparseTensorType ? 'sparse tensor' : 'unknown';
    return { name, datatype: null, elemType: 0, shape: [], rankKnown: false, kind };
  }
  const elemType = tensor.elemType ?? 0;
  const shape: Dim[] = (tensor.shape?.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    // dim_value is a oneof member, so absent (null) means unknown, not 0.
    if (d.dimValue !== null && d.dimValue !== undefined) return int64ToNumber(d.dimValue);
    return UNKNOWN_DIM;
  });
  return { name, datatype: datatypeFromOnnx(elemType), elemType, shape, rankKnown: tensor.shape != null, kind: 'tensor' };
}

interface Size { elements: number; bytes: number; external?: string }

function tensorSize(t: onnx.ITensorProto): Size {
  const elements = (t.dims ?? []).reduce<number>((n, d) => n * int64ToNumber(d), 1);
  const code = t.dataType ?? 0;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const entry = (key: string): string | undefined => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const length = entry('length');
    const bytes = length !== undefined ? Number(length) : Math.ceil(elements * onnxBytesPerElement(code));
    return { elements, bytes, external: entry('location') };
  }
  if (code === OnnxDataType.STRING) {
    return { elements, bytes: (t.stringData ?? []).reduce((n, s) => n + s.length, 0) };
  }
  if (t.rawData && t.rawData.length > 0) return { elements, bytes: t.rawData.length };
  return { elements, bytes: Math.ceil(elements * onnxBytesPerElement(code)) };
}

/** Weights held by a Constant node, whichever of its value_* attributes it uses. */
function constantSize(node: onnx.INodeProto): Size {
  const attr = node.attribute?.[0];
  if (!attr) return { elements: 0, bytes: 0 };
  switch (attr.name) {
    case 'value': return attr.t ? tensorSize(attr.t) : { elements: 0, bytes: 0 };
    case 'sparse_value': return attr.sparseTensor ? sparseSize(attr.sparseTensor) : { elements: 0, bytes: 0 };
    case 'value_float': case 'value_int': return { elements: 1, bytes: attr.name === 'value_int' ? 8 : 4 };
    case 'value_floats': return { elements: attr.floats?.length ?? 0, bytes: 4 * (attr.floats?.length ?? 0) };
    case 'value_ints': return { elements: attr.ints?.length ?? 0, bytes: 8 * (attr.ints?.length ?? 0) };
    case 'value_string': return { elements: 1, bytes: attr.s?.length ?? 0 };
    case 'value_strings': return {
      elements: attr.strings?.length ?? 0,
      bytes: (attr.strings ?? []).reduce((n, s) => n + s.length, 0),
    };
    default: return { elements: 0, bytes: 0 };
  }
}

function sparseSize(s: onnx.ISparseTensorProto): Size {
  const values = s.values ? tensorSize(s.values) : { elements: 0, bytes: 0 };
  const indices = s.indices ? tensorSize(s.indices) : { elements: 0, bytes: 0 };
  return { elements: values.elements, bytes: values.bytes + indices.bytes };
}

function readSource(source: Uint8Array | string): Uint8Array {
  if (typeof source !== 'string') return source;
  try {
    return readFileSync(source);
  } catch (err) {
    throw new EnsembleError(`cannot read ONNX model '${source}': ${(err as Error).message}`, 'invalid_input');
  }
}

/** Inspects a model given as bytes or as a file path. */
export function inspectModel(source: Uint8Array | string): ModelInfo {
  const model = decodeModel(readSource(source));
  // Decoded messages are class instances whose repeated fields are always arrays.
  const graph = model.graph as onnx.GraphProto | null;
  if (!graph) {
    const where = typeof source === 'string' ? `'${source}'` : 'the model';
    throw new EnsembleError(`${where} has no graph: not an ONNX model`, 'invalid_input');
  }
  const initializerNames = new Set(graph.initializer.map((t) => t.name));
  const sizes: Size[] = [
    ...graph.initializer.map(tensorSize),
    ...graph.sparseInitializer.map(sparseSize),
    ...graph.node.filter((n) => n.opType === 'Constant' && (n.domain ?? '') === '').map(constantSize),
  ];
  const defaultOpset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  const externalData = [...new Set(sizes.map((s) => s.external).filter((e): e is string => !!e))];
  return {
    inputs: graph.input.filter((v) => !initializerNames.has(v.name)).map(valueInfo),
    outputs: graph.output.map(valueInfo),
    nodeCount: graph.node.length,
    parameterCount: sizes.reduce((n, s) => n + s.elements, 0),
    weightBytes: sizes.reduce((n, s) => n + s.bytes, 0),
    opsetVersion: defaultOpset ? int64ToNumber(defaultOpset.version) : 0,
    irVersion: int64ToNumber(model.irVersion),
    producer: model.producerName ?? '',
    externalData,
  };
}
