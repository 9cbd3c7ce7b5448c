/**
 * How far a pipeline's output is from the whole model's. `maxRel` is
 * |a - b| / max(1, |b|), as the test fixtures measure it: the absolute
 * difference for values up to 1 (probabilities, where a relative error on a
 * 1e-9 entry means nothing) and the relative one above.
 */
import { fromHalfBits } from '@ensemble/core/tensor/fp16.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';

export interface Difference {
  maxAbs: number;
  maxRel: number;
  /** Set when the tensors cannot be compared element by element (shape or type differs). */
  problem?: string;
}

function numbers(t: Tensor): ArrayLike<number> | null {
  if (t.datatype === 'BYTES') return null;
  if (t.datatype === 'FP16') return Array.from(t.data as Uint16Array, fromHalfBits);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, Number);
  return t.data as ArrayLike<number>;
}

export function compareTensors(actual: Tensor, expected: Tensor): Difference {
  const shape = (t: Tensor): string => `${t.datatype} [${t.shape.join(', ')}]`;
  if (actual.datatype !== expected.datatype || actual.shape.join() !== expected.shape.join()) {
    return { maxAbs: Infinity, maxRel: Infinity, problem: `got ${shape(actual)}, expected ${shape(expected)}` };
  }
  const a = numbers(actual);
  const b = numbers(expected);
  if (!a || !b) {
    const same = (actual.data as Uint8Array[]).every((x, i) => Buffer.compare(x, (expected.data as Uint8Array[])[i]) === 0);
    return same ? { maxAbs: 0, maxRel: 0 } : { maxAbs: Infinity, maxRel: Infinity, problem: 'strings differ' };
  }
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const d = Math.abs(x - y);
    const diff = Number.isNaN(d) ? Infinity : d;
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, diff / Math.max(1, Math.abs(y)));
  }
  return { maxAbs, maxRel };
}
