import { BadRequestError, EnsembleError } from '../errors.js';
import { DATATYPES } from './types.js';
import type { Datatype, NumericData, Tensor, TensorData } from './types.js';

type NumericCtor =
  | Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | BigUint64ArrayConstructor
  | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor | BigInt64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

const CTORS: Record<Exclude<Datatype, 'BYTES'>, NumericCtor> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
  FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
};

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);

// The wire is little-endian and typed arrays use host order; every platform we
// run on (x64, arm64) is little-endian, so copying bytes is enough.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function isDatatype(s: string): s is Datatype {
  return DATATYPE_SET.has(s);
}

/** Product of the dims; 1 for a scalar (shape []). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes per element in binary form; undefined for BYTES (variable length). */
export function bytesPerElement(dt: Datatype): number | undefined {
  return dt === 'BYTES' ? undefined : CTORS[dt].BYTES_PER_ELEMENT;
}

/** The typed-array constructor that holds a numeric datatype. */
export function arrayTypeFor(dt: Exclude<Datatype, 'BYTES'>): NumericCtor {
  return CTORS[dt];
}

/** Zeroed storage for n elements (BYTES: n empty byte strings). */
export function allocate(dt: Datatype, n: number): TensorData {
  if (dt === 'BYTES') {
    const out: Uint8Array[] = new Array(n);
    const empty = new Uint8Array(0);
    for (let i = 0; i < n; i++) out[i] = empty;
    return out;
  }
  return new CTORS[dt](n);
}

/** True when `data` is the storage kind `dt` requires (see types.ts). */
export function dataMatches(dt: Datatype, data: TensorData): boolean {
  if (dt === 'BYTES') return Array.isArray(data) && data.every((e) => e instanceof Uint8Array);
  return !Array.isArray(data) && data instanceof CTORS[dt];
}

/**
 * What is wrong with a tensor, or undefined when it is well formed: a known
 * datatype, non-negative integer dims, storage of the right kind and exactly
 * one element per position of the shape.
 */
export function tensorProblem(t: Tensor): string | undefined {
  if (typeof t.datatype !== 'string' || !isDatatype(t.datatype)) return `unknown datatype '${String(t.datatype)}'`;
  if (!Array.isArray(t.shape)) return 'shape must be an array';
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      return `shape [${t.shape.join(', ')}] has an invalid dim ${String(d)} (need a non-negative integer)`;
    }
  }
  if (!dataMatches(t.datatype, t.data)) return `data storage does not match datatype ${t.datatype}`;
  const n = elementCount(t.shape);
  if (t.data.length !== n) return `shape [${t.shape.join(', ')}] needs ${n} elements but data has ${t.data.length}`;
  return undefined;
}

/** Throws BadRequestError naming `what` unless the tensor is well formed (see tensorProblem). */
export function checkTensor(t: Tensor, what: string): void {
  const problem = tensorProblem(t);
  if (problem !== undefined) throw new BadRequestError(`${what}: ${problem}`);
}

/**
 * A typed array of `length` elements copied from little-endian bytes at
 * `byteOffset`. Copying (not viewing) matters: binary blobs in a request body
 * sit at arbitrary offsets, and typed arrays need element-aligned offsets.
 */
export function typedArrayFor(
  dt: Datatype,
  buffer: ArrayBuffer | Uint8Array,
  byteOffset: number,
  length: number,
): NumericData {
  if (dt === 'BYTES') throw new EnsembleError('typedArrayFor: BYTES has no fixed-size element');
  if (!HOST_IS_LITTLE_ENDIAN) throw new EnsembleError('big-endian hosts are not supported');
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const out = new CTORS[dt](length);
  const byteLength = length * out.BYTES_PER_ELEMENT;
  if (byteOffset < 0 || byteOffset + byteLength > bytes.byteLength) {
    throw new EnsembleError(`typedArrayFor: ${byteLength} bytes at offset ${byteOffset} exceed a buffer of ${bytes.byteLength}`);
  }
  new Uint8Array(out.buffer).set(bytes.subarray(byteOffset, byteOffset + byteLength));
  return out;
}

/** The bytes of a numeric tensor's storage, little-endian, without copying. */
export function bytesOf(data: NumericData): Uint8Array {
  if (!HOST_IS_LITTLE_ENDIAN) throw new EnsembleError('big-endian hosts are not supported');
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
