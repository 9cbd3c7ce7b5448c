import type { Tensor } from '../tensor/types.js';
import { fromHalfBits } from '../tensor/fp16.js';

/**
 * A numeric tensor's elements as numbers, read in place: the typed array
 * itself when its elements already are numbers, an accessor for FP16 bits
 * and 64-bit integers. Nothing is copied or allocated per element.
 */
export interface Values {
  length: number;
  /** Direct elements, when reading them needs no conversion. */
  direct?: ArrayLike<number>;
  at(i: number): number;
}

export function valuesOf(t: Tensor): Values | undefined {
  const d = t.data;
  if (Array.isArray(d)) return undefined;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    return { length: d.length, at: (i) => Number(d[i]) };
  }
  if (t.datatype === 'FP16') {
    const bits = d as Uint16Array;
    return { length: bits.length, at: (i) => fromHalfBits(bits[i]) };
  }
  const direct = d as ArrayLike<number>;
  return { length: direct.length, direct, at: (i) => direct[i] };
}
