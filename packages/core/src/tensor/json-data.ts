/**
 * Tensor elements in JSON form. Conventions (documented in docs for users):
 * - BOOL is true/false (0/1 accepted on input).
 * - INT64/UINT64 go out as JSON numbers, every digit exact (Triton writes them
 *   so too); input takes numbers (read exactly, see json-text.ts: they arrive
 *   here as bigint beyond 2^53) or decimal strings.
 * - JSON has no NaN or Infinity: floats go out as the strings "NaN",
 *   "Infinity" and "-Infinity", which every JSON parser reads (bare tokens
 *   would make the whole body unreadable to JSON.parse and most non-Python
 *   parsers); input takes those strings and the bare tokens rapidjson writes.
 * - FP16 is a plain number (rounded to nearest half, ties to even).
 * - BYTES is a UTF-8 string; bytes that are not valid UTF-8 need binary form.
 */
import { EnsembleError } from '../errors.js';
import { allocate, elementCount } from './datatypes.js';
import { fromHalfBits, toHalfBits } from './fp16.js';
import type { Datatype, NumericData, Tensor, TensorData } from './types.js';

/** Throws the caller's error class; decoding a request and a response fail differently. */
export type Fail = (message: string) => never;

const MAX_NESTING = 64;

const INT_RANGES: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 0xff], UINT16: [0, 0xffff], UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f], INT16: [-0x8000, 0x7fff], INT32: [-0x80000000, 0x7fffffff],
};
const BIG_RANGES = {
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
} as const;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return clipDigits(v.toString());
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/**
 * Row-major elements of flat or nested JSON data. Nested arrays must be
 * rectangular: same length at each depth, values only at the deepest level.
 */
export function flattenJson(data: unknown, fail: Fail): unknown[] {
  if (!Array.isArray(data)) return fail(`data must be an array, got ${describe(data)}`);
  if (!data.some(Array.isArray)) return data;
  const lengths: number[] = [];
  const kinds: ('array' | 'value')[] = [];
  const out: unknown[] = [];
  const walk = (arr: unknown[], depth: number): void => {
    if (depth > MAX_NESTING) fail(`data is nested deeper than ${MAX_NESTING} levels`);
    if (lengths[depth] === undefined) lengths[depth] = arr.length;
    else if (lengths[depth] !== arr.length) {
      fail(`nested data is ragged: arrays at depth ${depth} have lengths ${lengths[depth]} and ${arr.length}`);
    }
    for (const v of arr) {
      const kind = Array.isArray(v) ? 'array' : 'value';
      if (kinds[depth] === undefined) kinds[depth] = kind;
      else if (kinds[depth] !== kind) fail(`nested data is ragged: depth ${depth} mixes arrays and values`);
      if (kind === 'array') walk(v as unknown[], depth + 1);
      else out.push(v);
    }
  };
  walk(data, 0);
  return out;
}

function clipDigits(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function parseBigInt(dt: 'INT64' | 'UINT64', v: unknown, i: number, fail: Fail): bigint {
  let b: bigint;
  if (typeof v === 'bigint') {
    b = v;
  } else if (typeof v === 'number') {
    if (!Number.isInteger(v)) fail(`element ${i} is ${describe(v)}, expected an integer for ${dt}`);
    // Integer tokens beyond 2^53 arrive as bigint; a number this large was written with an exponent or
    // has more digits than any 64-bit integer.
    if (!Number.isSafeInteger(v)) {
      const [lo, hi] = BIG_RANGES[dt];
      if (v < Number(lo) || v > Number(hi)) fail(`element ${i} is ${describe(v)}, out of range for ${dt}`);
      fail(`element ${i} is ${describe(v)}, written as a float; write an integer beyond 2^53 as plain digits`);
    }
    b = BigInt(v);
  } else if (typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v)) {
    b = BigInt(v);
  } else {
    return fail(`element ${i} is ${describe(v)}, expected an integer (number or decimal string) for ${dt}`);
  }
  const [lo, hi] = BIG_RANGES[dt];
  if (b < lo || b > hi) fail(`element ${i} is ${b}, out of range for ${dt}`);
  return b;
}

function parseFloatValue(dt: Datatype, v: unknown, i: number, fail: Fail): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v in NON_FINITE) return NON_FINITE[v];
  return fail(`element ${i} is ${describe(v)}, expected a number (or "NaN", "Infinity", "-Infinity") for ${dt}`);
}

/** Typed storage for `dt` from already-flattened JSON elements. */
export function jsonToData(dt: Datatype, values: unknown[], fail: Fail): TensorData {
  const n = values.length;
  const out = allocate(dt, n);
  switch (dt) {
    case 'BYTES': {
      const o = out as Uint8Array[];
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') fail(`element ${i} is ${describe(v)}, expected a string for BYTES`);
        o[i] = utf8.encode(v as string);
      }
      return o;
    }
    case 'BOOL': {
      const o = out as Uint8Array;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === true || v === 1) o[i] = 1;
        else if (v !== false && v !== 0) fail(`element ${i} is ${describe(v)}, expected a boolean for BOOL`);
      }
      return o;
    }
    case 'INT64':
    case 'UINT64': {
      const o = out as BigInt64Array | BigUint64Array;
      for (let i = 0; i < n; i++) o[i] = parseBigInt(dt, values[i], i, fail);
      return o;
    }
    case 'FP16': {
      const o = out as Uint16Array;
      for (let i = 0; i < n; i++) o[i] = toHalfBits(parseFloatValue(dt, values[i], i, fail));
      return o;
    }
    case 'FP32':
    case 'FP64': {
      const o = out as Float32Array | Float64Array;
      for (let i = 0; i < n; i++) o[i] = parseFloatValue(dt, values[i], i, fail);
      return o;
    }
    default: {
      const [lo, hi] = INT_RANGES[dt]!;
      const o = out as Exclude<NumericData, BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === 'bigint') fail(`element ${i} is ${describe(v)}, out of range for ${dt}`);
        if (typeof v !== 'number' || !Number.isInteger(v)) {
          fail(`element ${i} is ${describe(v)}, expected an integer for ${dt}`);
        }
        if ((v as number) < lo || (v as number) > hi) fail(`element ${i} is ${describe(v)}, out of range for ${dt}`);
        o[i] = v as number;
      }
      return o;
    }
  }
}

/** Check the flattened count against the shape, then convert. */
export function jsonTensorData(dt: Datatype, shape: number[], data: unknown, fail: Fail): TensorData {
  const values = flattenJson(data, fail);
  const want = elementCount(shape);
  if (values.length !== want) {
    fail(`shape [${shape.join(', ')}] needs ${want} elements but data has ${values.length}`);
  }
  return jsonToData(dt, values, fail);
}

/** True unless some BYTES element is not valid UTF-8 (then the tensor needs binary form). */
export function jsonEncodable(t: Tensor): boolean {
  if (!Array.isArray(t.data)) return true;
  try {
    for (const e of t.data) strictUtf8.decode(e);
    return true;
  } catch {
    return false;
  }
}

function floatToJson(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/**
 * Flat JSON elements of a tensor. Throws EnsembleError naming `what` when a
 * BYTES element is not valid UTF-8: check jsonEncodable first and choose
 * binary form instead.
 */
export function dataToJson(dt: Datatype, data: TensorData, what: string): unknown[] {
  const n = data.length;
  const out: unknown[] = new Array(n);
  switch (dt) {
    case 'BYTES': {
      const d = data as Uint8Array[];
      for (let i = 0; i < n; i++) {
        try {
          out[i] = strictUtf8.decode(d[i]);
        } catch {
          throw new EnsembleError(`${what}: BYTES element ${i} is not valid UTF-8; request it with binary_data`);
        }
      }
      return out;
    }
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = (data as Uint8Array)[i] !== 0;
      return out;
    case 'INT64':
    case 'UINT64':
      // As numbers where a double holds them (for callers that want values); dataToJsonText writes all exactly.
      for (let i = 0; i < n; i++) {
        const b = (data as BigInt64Array | BigUint64Array)[i];
        out[i] = b <= MAX_SAFE && b >= -MAX_SAFE ? Number(b) : b.toString();
      }
      return out;
    case 'FP16':
      for (let i = 0; i < n; i++) out[i] = floatToJson(fromHalfBits((data as Uint16Array)[i]));
      return out;
    case 'FP32':
    case 'FP64':
      for (let i = 0; i < n; i++) out[i] = floatToJson((data as Float32Array | Float64Array)[i]);
      return out;
    default:
      for (let i = 0; i < n; i++) out[i] = (data as Exclude<NumericData, BigInt64Array | BigUint64Array>)[i];
      return out;
  }
}

/**
 * A tensor's `data` as JSON text: INT64/UINT64 as numbers with every digit
 * (JSON.stringify cannot write a bigint, and a double would round it), the
 * rest as dataToJson gives them.
 */
export function dataToJsonText(dt: Datatype, data: TensorData, what: string): string {
  if (dt === 'INT64' || dt === 'UINT64') {
    const d = data as BigInt64Array | BigUint64Array;
    let s = '[';
    for (let i = 0; i < d.length; i++) s += i === 0 ? d[i].toString() : `,${d[i].toString()}`;
    return `${s}]`;
  }
  return JSON.stringify(dataToJson(dt, data, what));
}
