/**
 * The ONNX protobuf schema, from the maintained `onnx-proto` package (static
 * protobufjs code generated from onnx.proto), plus the few helpers every user
 * of it needs: decode/encode a ModelProto, read int64 fields that protobufjs
 * hands back as Long, and map element types to our Open Inference Protocol
 * datatypes.
 */
import onnxProto from 'onnx-proto';
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Datatype } from '@ensemble/core/tensor/types.js';

// An import alias keeps `onnx` usable both as a value (onnx.ModelProto.decode)
// and as a namespace of types (onnx.ModelProto), like the package's own d.ts.
export import onnx = onnxProto.onnx;

export const OnnxDataType = onnx.TensorProto.DataType;

/** protobufjs decodes int64 fields as Long objects when `long` is available. */
export type Int64Like = number | { toNumber(): number } | null | undefined;

/** An int64 field as a JS number (sizes and versions fit in 2^53). */
export function int64ToNumber(v: Int64Like): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new EnsembleError(`not a valid ONNX model: ${(err as Error).message}`, 'invalid_input');
  }
}

/** Encodes a model; the result is a plain Uint8Array (not a Node Buffer). */
export function encodeModel(model: onnx.IModelProto): Uint8Array {
  const buf = onnx.ModelProto.encode(model).finish();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

const TO_ONNX: Record<Datatype, number> = {
  BOOL: OnnxDataType.BOOL,
  UINT8: OnnxDataType.UINT8,
  UINT16: OnnxDataType.UINT16,
  UINT32: OnnxDataType.UINT32,
  UINT64: OnnxDataType.UINT64,
  INT8: OnnxDataType.INT8,
  INT16: OnnxDataType.INT16,
  INT32: OnnxDataType.INT32,
  INT64: OnnxDataType.INT64,
  FP16: OnnxDataType.FLOAT16,
  FP32: OnnxDataType.FLOAT,
  FP64: OnnxDataType.DOUBLE,
  BYTES: OnnxDataType.STRING,
};

const FROM_ONNX = new Map<number, Datatype>(
  Object.entries(TO_ONNX).map(([dt, code]) => [code, dt as Datatype]),
);

/** ONNX TensorProto.DataType code for one of our datatypes. */
export function datatypeToOnnx(datatype: Datatype): number {
  return TO_ONNX[datatype];
}

/**
 * Our datatype for an ONNX element type, or null for types the Open Inference
 * Protocol cannot carry (BFLOAT16, complex, float8, ...).
 */
export function datatypeFromOnnx(code: number): Datatype | null {
  return FROM_ONNX.get(code) ?? null;
}

/** Name of an ONNX element type code, for error messages ("BFLOAT16", "code 42"). */
export function onnxDataTypeName(code: number): string {
  return OnnxDataType[code] ?? `code ${code}`;
}

/**
 * Bytes per element for any ONNX element type code, including the ones we
 * cannot serve (BFLOAT16, complex, float8, 4-bit). STRING and unknown give 0.
 */
export function onnxBytesPerElement(code: number): number {
  const dt = datatypeFromOnnx(code);
  if (dt) return bytesPerElement(dt);
  switch (code) {
    case OnnxDataType.BFLOAT16: return 2;
    case OnnxDataType.COMPLEX64: return 8;
    case OnnxDataType.COMPLEX128: return 16;
    case 17: case 18: case 19: case 20: return 1; // float8 variants (IR 9)
    case 21: case 22: case 23: return 0.5; // uint4, int4, float4e2m1 (IR 10+)
    default: return 0;
  }
}

/** Bytes per element in raw_data; BYTES (strings) have no fixed size and give 0. */
export function bytesPerElement(datatype: Datatype): number {
  switch (datatype) {
    case 'BOOL': case 'UINT8': case 'INT8': return 1;
    case 'UINT16': case 'INT16': case 'FP16': return 2;
    case 'UINT32': case 'INT32': case 'FP32': return 4;
    case 'UINT64': case 'INT64': case 'FP64': return 8;
    case 'BYTES': return 0;
  }
}
