import { bytesOf } from '../../src/tensor/datatypes.js';
import type { Datatype, NumericData, Tensor } from '../../src/tensor/types.js';

const utf8 = new TextEncoder();
export const bytes = (...s: string[]): Uint8Array[] => s.map((x) => utf8.encode(x));

/** One tensor per datatype, with values at the edges of each type. */
export const SAMPLES: Record<Datatype, Tensor> = {
  BOOL: { datatype: 'BOOL', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
  UINT8: { datatype: 'UINT8', shape: [4], data: new Uint8Array([0, 1, 127, 255]) },
  UINT16: { datatype: 'UINT16', shape: [2, 2], data: new Uint16Array([0, 1, 32768, 65535]) },
  UINT32: { datatype: 'UINT32', shape: [4], data: new Uint32Array([0, 1, 2 ** 31, 2 ** 32 - 1]) },
  UINT64: {
    datatype: 'UINT64', shape: [5],
    data: new BigUint64Array([0n, 1n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]),
  },
  INT8: { datatype: 'INT8', shape: [4], data: new Int8Array([-128, -1, 0, 127]) },
  INT16: { datatype: 'INT16', shape: [4], data: new Int16Array([-32768, -1, 0, 32767]) },
  INT32: { datatype: 'INT32', shape: [2, 2], data: new Int32Array([-(2 ** 31), -1, 0, 2 ** 31 - 1]) },
  INT64: {
    datatype: 'INT64', shape: [2, 3],
    data: new BigInt64Array([-(2n ** 63n), -(2n ** 53n) - 1n, -5n, 42n, 2n ** 53n + 1n, 2n ** 63n - 1n]),
  },
  // 1, -2, 65504 (max), smallest subnormal, largest subnormal, +Inf, -Inf, NaN, 0.333 (0x3555)
  FP16: {
    datatype: 'FP16', shape: [9],
    data: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x3555]),
  },
  FP32: {
    datatype: 'FP32', shape: [3, 3],
    data: new Float32Array([0, 1.5, -3.25, 0.1, 3.4028234663852886e38, 1.401298464324817e-45, NaN, Infinity, -Infinity]),
  },
  FP64: {
    datatype: 'FP64', shape: [8],
    data: new Float64Array([0, 0.1, -1e-300, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity]),
  },
  BYTES: {
    datatype: 'BYTES', shape: [2, 3],
    data: bytes('', 'hello', 'héllo wörld', '日本語', '😀 emoji', 'nul\u0000inside'),
  },
};

/** Exact comparison: numeric storage byte for byte (so NaN and -0 count), BYTES element by element. */
export function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.datatype !== b.datatype) return false;
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  if (Array.isArray(a.data) || Array.isArray(b.data)) {
    if (!Array.isArray(a.data) || !Array.isArray(b.data) || a.data.length !== b.data.length) return false;
    const bd = b.data;
    return a.data.every((e, i) => Buffer.from(e).equals(Buffer.from(bd[i])));
  }
  if (a.data.constructor !== b.data.constructor) return false;
  return Buffer.from(bytesOf(a.data as NumericData)).equals(Buffer.from(bytesOf(b.data as NumericData)));
}

/** Plain description for assertion messages. */
export function show(t: Tensor): string {
  const data = Array.isArray(t.data) ? t.data.map((e) => Buffer.from(e).toString('hex')) : Array.from(t.data as ArrayLike<unknown>, String);
  return `${t.datatype}[${t.shape.join(',')}] ${data.join(' ')}`;
}
