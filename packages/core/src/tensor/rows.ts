/**
 * Moving between items (tensors without a batch dim) and batches (dim 0 is
 * the item). Results never share storage with their inputs: parts may be
 * sent to worker processes or transferred, which detaches their buffers.
 */
import { EnsembleError } from '../errors.js';
import { allocate, elementCount } from './datatypes.js';
import { toHalfBits } from './fp16.js';
import type { Datatype, NumericData, Tensor, TensorData } from './types.js';

// The NumericData union is not callable as one type; every member has these.
interface Copyable {
  subarray(begin: number, end: number): Copyable;
  set(src: Copyable, offset: number): void;
  slice(begin: number, end: number): NumericData;
  fill(value: number | bigint): unknown;
}

function copyInto(dst: TensorData, dstOff: number, src: TensorData, srcOff: number, len: number): void {
  if (len === 0) return;
  if (Array.isArray(dst)) {
    const s = src as Uint8Array[];
    for (let k = 0; k < len; k++) dst[dstOff + k] = s[srcOff + k];
    return;
  }
  (dst as unknown as Copyable).set((src as unknown as Copyable).subarray(srcOff, srcOff + len), dstOff);
}

function sliceData(data: TensorData, begin: number, end: number): TensorData {
  return Array.isArray(data) ? data.slice(begin, end) : (data as unknown as Copyable).slice(begin, end);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkLength(t: Tensor, what: string): void {
  const n = elementCount(t.shape);
  if (t.data.length !== n) {
    throw new EnsembleError(`${what}: shape ${fmt(t.shape)} needs ${n} elements but data has ${t.data.length}`);
  }
}

/**
 * Split along dim 0; each part drops dim 0 (a rank-1 tensor gives scalars, shape []).
 * `begin`/`end`: only those rows, so a big tensor can be split a piece at a time.
 */
export function splitRows(t: Tensor, begin = 0, end = t.shape[0]): Tensor[] {
  if (t.shape.length === 0) throw new EnsembleError('splitRows: a scalar (shape []) has no rows');
  checkLength(t, 'splitRows');
  const from = Math.max(0, begin);
  const to = Math.min(t.shape[0], end);
  const itemShape = t.shape.slice(1);
  const per = elementCount(itemShape);
  const out: Tensor[] = new Array(Math.max(0, to - from));
  for (let i = from; i < to; i++) {
    out[i - from] = { datatype: t.datatype, shape: itemShape.slice(), data: sliceData(t.data, i * per, (i + 1) * per) };
  }
  return out;
}

function padFill(dt: Datatype, padValue: number): number | bigint | undefined {
  if (dt === 'BYTES') return undefined; // BYTES pads with empty byte strings
  if (dt === 'BOOL') return padValue ? 1 : 0;
  if (dt === 'FP16') return toHalfBits(padValue);
  if (dt === 'INT64' || dt === 'UINT64') {
    if (!Number.isInteger(padValue)) throw new EnsembleError(`stackRows: pad value ${padValue} is not an integer for ${dt}`);
    return BigInt(padValue);
  }
  return padValue;
}

export interface StackOptions {
  /** Axis of the per-item shape along which parts may differ; smaller parts are padded at the end. */
  padAxis?: number;
  /** Value written into padding (default 0; converted to half bits for FP16; BYTES pads with empty strings). */
  padValue?: number;
}

/** Stack items into a batch: adds dim 0 of size parts.length. */
export function stackRows(parts: Tensor[], opts: StackOptions = {}): Tensor {
  if (parts.length === 0) throw new EnsembleError('stackRows: no parts to stack (use emptyRows)');
  const { datatype, shape: firstShape } = parts[0];
  const rank = firstShape.length;
  const { padAxis, padValue = 0 } = opts;
  if (padAxis !== undefined && (!Number.isInteger(padAxis) || padAxis < 0 || padAxis >= rank)) {
    throw new EnsembleError(`stackRows: pad axis ${padAxis} is not an axis of item shape ${fmt(firstShape)}`);
  }
  const target = firstShape.slice();
  parts.forEach((p, i) => {
    if (p.datatype !== datatype) {
      throw new EnsembleError(`stackRows: part ${i} has datatype ${p.datatype}, part 0 has ${datatype}`);
    }
    if (p.shape.length !== rank) {
      throw new EnsembleError(`stackRows: part ${i} has shape ${fmt(p.shape)}, part 0 has ${fmt(firstShape)} (ranks differ)`);
    }
    checkLength(p, `stackRows: part ${i}`);
    for (let a = 0; a < rank; a++) {
      if (a === padAxis) target[a] = Math.max(target[a], p.shape[a]);
      else if (p.shape[a] !== firstShape[a]) {
        const hint = padAxis === undefined ? '' : ` (only axis ${padAxis} may differ)`;
        throw new EnsembleError(`stackRows: part ${i} has shape ${fmt(p.shape)}, part 0 has ${fmt(firstShape)}${hint}`);
      }
    }
  });

  const per = elementCount(target);
  const data = allocate(datatype, parts.length * per);
  const needsPad = padAxis !== undefined && parts.some((p) => p.shape[padAxis] !== target[padAxis]);
  if (needsPad) {
    const fill = padFill(datatype, padValue);
    if (fill !== undefined && fill !== 0 && fill !== 0n) (data as unknown as Copyable).fill(fill);
  }
  parts.forEach((p, i) => {
    const base = i * per;
    if (padAxis === undefined || p.shape[padAxis] === target[padAxis]) {
      copyInto(data, base, p.data, 0, per);
      return;
    }
    // Rows of the padded axis and everything after it are contiguous in both layouts.
    const outer = elementCount(p.shape.slice(0, padAxis));
    const inner = elementCount(p.shape.slice(padAxis + 1));
    const srcRun = p.shape[padAxis] * inner;
    const dstRun = target[padAxis] * inner;
    for (let o = 0; o < outer; o++) copyInto(data, base + o * dstRun, p.data, o * srcRun, srcRun);
  });
  return { datatype, shape: [parts.length, ...target], data };
}

/** A batch of zero items; -1 (unknown) dims of the item shape become 0. */
export function emptyRows(datatype: Datatype, itemShape: number[]): Tensor {
  return { datatype, shape: [0, ...itemShape.map((d) => (d < 0 ? 0 : d))], data: allocate(datatype, 0) };
}

/** Concatenate batches along their existing dim 0. */
export function concatRows(tensors: Tensor[]): Tensor {
  if (tensors.length === 0) throw new EnsembleError('concatRows: no tensors to concatenate');
  const { datatype, shape: firstShape } = tensors[0];
  if (firstShape.length === 0) throw new EnsembleError('concatRows: a scalar (shape []) has no rows');
  const rest = firstShape.slice(1);
  let rows = 0;
  tensors.forEach((t, i) => {
    if (t.datatype !== datatype) {
      throw new EnsembleError(`concatRows: tensor ${i} has datatype ${t.datatype}, tensor 0 has ${datatype}`);
    }
    const same = t.shape.length === firstShape.length && rest.every((d, a) => t.shape[a + 1] === d);
    if (!same) {
      throw new EnsembleError(`concatRows: tensor ${i} has shape ${fmt(t.shape)}, tensor 0 has ${fmt(firstShape)} (only dim 0 may differ)`);
    }
    checkLength(t, `concatRows: tensor ${i}`);
    rows += t.shape[0];
  });
  const data = allocate(datatype, rows * elementCount(rest));
  let off = 0;
  for (const t of tensors) {
    copyInto(data, off, t.data, 0, t.data.length);
    off += t.data.length;
  }
  return { datatype, shape: [rows, ...rest], data };
}

/**
 * Stack items whose shapes may differ in any axis (same rank): each axis is
 * padded at its end to the largest in `parts` (and at least `atLeast`, so
 * pieces of one big join come out the same shape), with `padValue`.
 */
export function padRows(parts: Tensor[], padValue = 0, atLeast?: readonly number[]): Tensor {
  if (parts.length === 0) throw new EnsembleError('padRows: no parts to stack (use emptyRows)');
  const { datatype, shape: firstShape } = parts[0];
  const rank = firstShape.length;
  const target = firstShape.map((d, a) => Math.max(d, atLeast?.[a] ?? 0));
  parts.forEach((p, i) => {
    if (p.datatype !== datatype) throw new EnsembleError(`padRows: part ${i} has datatype ${p.datatype}, part 0 has ${datatype}`);
    if (p.shape.length !== rank) throw new EnsembleError(`padRows: part ${i} has shape ${fmt(p.shape)}, part 0 has ${fmt(firstShape)} (ranks differ)`);
    checkLength(p, `padRows: part ${i}`);
    for (let a = 0; a < rank; a++) target[a] = Math.max(target[a], p.shape[a]);
  });
  if (rank === 0 || parts.every((p) => p.shape.every((d, a) => d === target[a]))) return stackRows(parts);
  const per = elementCount(target);
  const data = allocate(datatype, parts.length * per);
  const fill = padFill(datatype, padValue);
  if (fill !== undefined && fill !== 0 && fill !== 0n) (data as unknown as Copyable).fill(fill);
  else if (datatype === 'BYTES') (data as Uint8Array[]).fill(new Uint8Array(0));
  // Strides of the padded layout; the last axis is copied as one run per row.
  const strides = new Array<number>(rank).fill(1);
  for (let a = rank - 2; a >= 0; a--) strides[a] = strides[a + 1] * target[a + 1];
  parts.forEach((p, i) => {
    const run = p.shape[rank - 1];
    const rows = elementCount(p.shape.slice(0, -1));
    const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
    for (let r = 0; r < rows; r++) {
      let dst = i * per;
      for (let a = 0; a < rank - 1; a++) dst += idx[a] * strides[a];
      copyInto(data, dst, p.data, r * run, run);
      for (let a = rank - 2; a >= 0; a--) {
        if (++idx[a] < p.shape[a]) break;
        idx[a] = 0;
      }
    }
  });
  return { datatype, shape: [parts.length, ...target], data };
}

/**
 * splitRows along another axis (a state tensor [2, batch, 64] has its items
 * along axis 1); each part drops that axis.
 */
export function splitAlong(t: Tensor, axis: number, begin = 0, end = t.shape[axis]): Tensor[] {
  if (axis === 0) return splitRows(t, begin, end);
  if (!Number.isInteger(axis) || axis < 0 || axis >= t.shape.length) {
    throw new EnsembleError(`splitAlong: axis ${axis} is not an axis of shape ${fmt(t.shape)}`);
  }
  checkLength(t, 'splitAlong');
  const n = t.shape[axis];
  const from = Math.max(0, begin);
  const to = Math.min(n, end);
  const itemShape = [...t.shape.slice(0, axis), ...t.shape.slice(axis + 1)];
  const outer = elementCount(t.shape.slice(0, axis));
  const inner = elementCount(t.shape.slice(axis + 1));
  const out: Tensor[] = new Array(Math.max(0, to - from));
  for (let i = from; i < to; i++) {
    const data = allocate(t.datatype, outer * inner);
    for (let o = 0; o < outer; o++) copyInto(data, o * inner, t.data, (o * n + i) * inner, inner);
    out[i - from] = { datatype: t.datatype, shape: itemShape.slice(), data };
  }
  return out;
}

/** A batch stacked along dim 0 ([n, ...item]) with its item axis moved to `axis`. */
export function moveBatchAxis(t: Tensor, axis: number): Tensor {
  if (axis === 0) return t;
  const [n, ...item] = t.shape;
  if (!Number.isInteger(axis) || axis < 0 || axis > item.length) {
    throw new EnsembleError(`moveBatchAxis: axis ${axis} is not an axis for item shape ${fmt(item)}`);
  }
  const outer = elementCount(item.slice(0, axis));
  const inner = elementCount(item.slice(axis));
  const per = outer * inner;
  const data = allocate(t.datatype, t.data.length);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outer; o++) copyInto(data, (o * n + i) * inner, t.data, i * per + o * inner, inner);
  }
  return { datatype: t.datatype, shape: [...item.slice(0, axis), n, ...item.slice(axis)], data };
}

/** stackRows with the new item axis at `axis` instead of 0. */
export function stackAlong(parts: Tensor[], axis: number, opts: StackOptions = {}): Tensor {
  return moveBatchAxis(stackRows(parts, opts), axis);
}
