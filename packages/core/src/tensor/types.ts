/**
 * Tensors as they move through Ensemble. Datatype names are the Open Inference
 * Protocol v2 (KServe / Triton) names, so the wire and the engine agree.
 */
export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64',
  'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64', 'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

/**
 * Element storage per datatype. BOOL is a Uint8Array of 0/1; FP16 keeps raw
 * IEEE half bits in a Uint16Array; BYTES is one Uint8Array per element.
 */
export type NumericData =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array;
export type TensorData = NumericData | Uint8Array[];

export interface Tensor {
  datatype: Datatype;
  /** Row-major shape; every entry is a concrete size (no -1 here). */
  shape: number[];
  data: TensorData;
}

/**
 * One unit of work flowing through the DAG: named tensors WITHOUT a batch
 * dimension (a request row, a text line). Stages batch items themselves.
 */
export type Item = Record<string, Tensor>;
