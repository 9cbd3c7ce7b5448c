/**
 * A tiny ONNX graph builder, so tests and the demo make their models in code
 * instead of committing binaries. Same calls give identical bytes (node names
 * are counters, fields are written in call order, initializers as
 * little-endian raw_data), so a manifest can pin the sha256 of a built model.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Datatype } from '@ensemble/core/tensor/types.js';
import { bytesPerElement, datatypeToOnnx, encodeModel, onnx } from './proto.js';

/** A dimension: a fixed size, or a symbolic name for a dynamic one ("batch"). */
export type Dim = number | string;

export type InitializerData =
  | Float32Array | Float64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | Uint8Array[] | string[]
  | number[];

/** A FLOAT attribute whose value happens to be integral (Gemm alpha = 1). */
export class FloatAttribute {
  constructor(readonly value: number) {}
}
/** A TENSOR attribute, e.g. Constant's `value`. */
export class TensorAttribute {
  constructor(readonly datatype: Datatype, readonly dims: number[], readonly data: InitializerData) {}
}
export const floatAttr = (value: number): FloatAttribute => new FloatAttribute(value);
export const tensorAttr = (datatype: Datatype, dims: number[], data: InitializerData): TensorAttribute =>
  new TensorAttribute(datatype, dims, data);

/**
 * Plain numbers are INT when integral and FLOAT otherwise (wrap with
 * floatAttr() to force FLOAT); number[] is INTS unless some entry is
 * fractional; Float32Array is always FLOATS.
 */
export type AttributeValue =
  | number | number[] | Float32Array | string | string[]
  | FloatAttribute | TensorAttribute;

export interface NodeOptions {
  /** Defaults to `<opType>_<index>`. */
  name?: string;
  /** Operator domain; '' (default) is the standard ai.onnx domain. */
  domain?: string;
}

export interface BuildOptions {
  opset?: number;
  irVersion?: number;
  producer?: string;
  docString?: string;
}

type TypedArrayClass = abstract new (...args: never[]) => ArrayBufferView;
const ELEMENT_TYPES: Record<Exclude<Datatype, 'BYTES'>, TypedArrayClass> = {
  BOOL: Uint8Array, UINT8: Uint8Array, INT8: Int8Array,
  UINT16: Uint16Array, INT16: Int16Array, FP16: Uint16Array,
  UINT32: Uint32Array, INT32: Int32Array, FP32: Float32Array,
  UINT64: BigUint64Array, INT64: BigInt64Array, FP64: Float64Array,
};

function fail(graph: string, message: string): never {
  throw new EnsembleError(`GraphBuilder '${graph}': ${message}`);
}

function checkDims(graph: string, what: string, dims: readonly Dim[]): void {
  for (const d of dims) {
    const ok = typeof d === 'string' ? d.length > 0 : Number.isInteger(d) && d >= 0;
    if (!ok) fail(graph, `${what}: bad dimension ${JSON.stringify(d)}`);
  }
}

/** Turns number[] into the typed array the datatype stores (FP16 must already be raw bits). */
function toTypedArray(datatype: Exclude<Datatype, 'BYTES'>, data: number[]): Exclude<InitializerData, number[] | string[] | Uint8Array[]> {
  switch (datatype) {
    case 'BOOL': case 'UINT8': return Uint8Array.from(data);
    case 'INT8': return Int8Array.from(data);
    case 'UINT16': case 'FP16': return Uint16Array.from(data);
    case 'INT16': return Int16Array.from(data);
    case 'UINT32': return Uint32Array.from(data);
    case 'INT32': return Int32Array.from(data);
    case 'FP32': return Float32Array.from(data);
    case 'FP64': return Float64Array.from(data);
    case 'UINT64': return BigUint64Array.from(data.map((v) => BigInt(v)));
    case 'INT64': return BigInt64Array.from(data.map((v) => BigInt(v)));
  }
}

/** Builds a TensorProto; numeric data goes to raw_data, strings to string_data. */
export function makeTensor(
  name: string, datatype: Datatype, dims: readonly number[], data: InitializerData, where = name,
): onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new EnsembleError(`tensor '${where}': ${data.length} values for dims [${dims.join(', ')}] (${count} elements)`);
  }
  const base: onnx.ITensorProto = { name, dims: [...dims], dataType: datatypeToOnnx(datatype) };
  if (datatype === 'BYTES') {
    const strings = Array.from(data as ArrayLike<unknown>, (v) => {
      if (typeof v === 'string') return new TextEncoder().encode(v);
      if (v instanceof Uint8Array) return v;
      throw new EnsembleError(`tensor '${where}': BYTES data must be strings or Uint8Arrays`);
    });
    return { ...base, stringData: strings };
  }
  const typed = Array.isArray(data) && (data.length === 0 || typeof data[0] === 'number')
    ? toTypedArray(datatype, data as number[])
    : data;
  const expected = ELEMENT_TYPES[datatype];
  if (!(typed instanceof expected)) {
    const got = ArrayBuffer.isView(typed) ? typed.constructor.name : 'an array of non-numbers';
    throw new EnsembleError(`tensor '${where}': ${datatype} data must be a ${expected.name}, got ${got}`);
  }
  if (typed.byteLength !== count * bytesPerElement(datatype)) {
    throw new EnsembleError(`tensor '${where}': wrong byte length for ${datatype}`);
  }
  // raw_data is little-endian by spec; typed arrays are host-endian, which is
  // little-endian on every platform onnxruntime-node ships for.
  const raw = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength).slice();
  return { ...base, rawData: raw };
}

function valueInfo(name: string, datatype: Datatype, dims: readonly Dim[] | null): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: datatypeToOnnx(datatype) };
  if (dims !== null) {
    tensorType.shape = {
      dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
    };
  }
  return { name, type: { tensorType } };
}

function makeAttribute(graph: string, node: string, name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (value instanceof FloatAttribute) return { name, type: T.FLOAT, f: value.value };
  if (value instanceof TensorAttribute) {
    return { name, type: T.TENSOR, t: makeTensor('', value.datatype, value.dims, value.data, `${node}.${name}`) };
  }
  if (value instanceof Float32Array) return { name, type: T.FLOATS, floats: Array.from(value) };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(graph, `node '${node}' attribute '${name}': not a finite number`);
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      if (value.length > 0) {
        return { name, type: T.STRINGS, strings: (value as string[]).map((v) => new TextEncoder().encode(v)) };
      }
    }
    const nums = value as number[];
    if (nums.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      fail(graph, `node '${node}' attribute '${name}': arrays must be all numbers or all strings`);
    }
    return nums.every(Number.isInteger) ? { name, type: T.INTS, ints: nums } : { name, type: T.FLOATS, floats: nums };
  }
  return fail(graph, `node '${node}' attribute '${name}': unsupported value`);
}

export class GraphBuilder {
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly domains = new Set<string>();

  constructor(readonly name: string) {}

  /** A graph input; string dims are symbolic (dynamic), e.g. ['batch', 4]. */
  input(name: string, datatype: Datatype, dims: readonly Dim[]): this {
    checkDims(this.name, `input '${name}'`, dims);
    this.inputs.push(valueInfo(name, datatype, dims));
    return this;
  }

  /** A graph output; `null` dims leave the shape (even the rank) unknown. */
  output(name: string, datatype: Datatype, dims: readonly Dim[] | null): this {
    if (dims) checkDims(this.name, `output '${name}'`, dims);
    this.outputs.push(valueInfo(name, datatype, dims));
    return this;
  }

  /** A constant weight tensor, stored as raw_data (strings as string_data). */
  initializer(name: string, datatype: Datatype, dims: readonly number[], data: InitializerData): this {
    checkDims(this.name, `initializer '${name}'`, dims);
    this.initializers.push(makeTensor(name, datatype, dims, data));
    return this;
  }

  node(
    opType: string, inputs: readonly string[], outputs: readonly string[],
    attributes: Record<string, AttributeValue> = {}, options: NodeOptions = {},
  ): this {
    const name = options.name ?? `${opType}_${this.nodes.length}`;
    const domain = options.domain ?? '';
    if (domain !== '') this.domains.add(domain);
    this.nodes.push({
      name,
      opType,
      domain,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attributes).map(([k, v]) => makeAttribute(this.name, name, k, v)),
    });
    return this;
  }

  /** The ModelProto, after checking every tensor a node reads is produced somewhere. */
  toModel(options: BuildOptions = {}): onnx.IModelProto {
    const { opset = 17, irVersion = 8, producer = 'ensemble', docString } = options;
    this.check();
    const opsetImport: onnx.IOperatorSetIdProto[] = [{ domain: '', version: opset }];
    // Custom domains are listed in a fixed order so the bytes do not depend on node order.
    for (const domain of [...this.domains].sort()) opsetImport.push({ domain, version: 1 });
    return {
      irVersion,
      opsetImport,
      producerName: producer,
      docString: docString ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
  }

  build(options: BuildOptions = {}): Uint8Array {
    return encodeModel(this.toModel(options));
  }

  private check(): void {
    const produced = new Set<string>();
    const add = (name: string, by: string): void => {
      if (produced.has(name)) fail(this.name, `tensor '${name}' is produced twice (again by ${by})`);
      produced.add(name);
    };
    for (const i of this.inputs) add(i.name!, 'an input');
    for (const t of this.initializers) add(t.name!, 'an initializer');
    for (const n of this.nodes) {
      for (const i of n.input!) {
        if (i !== '' && !produced.has(i)) fail(this.name, `node '${n.name}' reads '${i}' before anything produces it`);
      }
      for (const o of n.output!) if (o !== '') add(o, `node '${n.name}'`);
    }
    if (this.outputs.length === 0) fail(this.name, 'the graph has no outputs');
    for (const o of this.outputs) {
      if (!produced.has(o.name!)) fail(this.name, `output '${o.name}' is not produced by any node`);
    }
  }
}
