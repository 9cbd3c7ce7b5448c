/**
 * How far a pipeline's output is from the whole model's. `maxRel` is
 * |a - b| / max(1, |b|), as the test fixtures measure it: the absolute
 * difference for values up to 1 (probabilities, where a relative error on a
 * 1e-9 entry means nothing) and the relative one above. The pass test is
 * numpy's allclose, |a - b| <= atol + rtol * |b|, with tolerances that fit the
 * datatypes (see toleranceFor).
 */
import { fromHalfBits } from '@ensemble/core/tensor/fp16.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Difference {
  maxAbs: number;
  maxRel: number;
  /** Largest |a - b| / (atol + rtol * |b|) over the elements: at most 1 passes (0 when equal). */
  excess: number;
  /** Set when the tensors cannot be compared element by element (shape or type differs). */
  problem?: string;
}

function numbers(t: Tensor): ArrayLike<number> | null {
  if (t.datatype === 'BYTES') return null;
  if (t.datatype === 'FP16') return Array.from(t.data as Uint16Array, fromHalfBits);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, Number);
  return t.data as ArrayLike<number>;
}

export function compareTensors(actual: Tensor, expected: Tensor, tol: Tolerance = { atol: 1e-4, rtol: 1e-4 }): Difference {
  const shape = (t: Tensor): string => `${t.datatype} [${t.shape.join(', ')}]`;
  if (actual.datatype !== expected.datatype || actual.shape.join() !== expected.shape.join()) {
    return { maxAbs: Infinity, maxRel: Infinity, excess: Infinity, problem: `got ${shape(actual)}, expected ${shape(expected)}` };
  }
  const a = numbers(actual);
  const b = numbers(expected);
  if (!a || !b) {
    const same = (actual.data as Uint8Array[]).every((x, i) => Buffer.compare(x, (expected.data as Uint8Array[])[i]) === 0);
    return same ? { maxAbs: 0, maxRel: 0, excess: 0 } : { maxAbs: Infinity, maxRel: Infinity, excess: Infinity, problem: 'strings differ' };
  }
  let maxAbs = 0;
  let maxRel = 0;
  let excess = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const d = Math.abs(x - y);
    const diff = Number.isNaN(d) ? Infinity : d;
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, diff / Math.max(1, Math.abs(y)));
    const allowed = tol.atol + tol.rtol * Math.abs(y);
    excess = Math.max(excess, allowed > 0 ? diff / allowed : Infinity);
  }
  return { maxAbs, maxRel, excess };
}

/**
 * Default tolerance for a datatype that crosses a cut or is an output. A half-
 * precision tensor at a cut is rounded where the whole model may keep it in
 * FP32 (ONNX Runtime computes FP16 ops in FP32 on CPU and drops the casts
 * between them), so its rounding (2^-11 for FP16, 2^-8 for BF16) shows in
 * the outputs; integers and strings must match exactly.
 */
export function toleranceFor(datatype: string): Tolerance {
  switch (datatype) {
    case 'FP64':
    case 'FP32': return { atol: 1e-4, rtol: 1e-4 };
    case 'FP16': return { atol: 1e-2, rtol: 1e-2 };
    case 'BF16': return { atol: 5e-2, rtol: 5e-2 };
    default: return { atol: 0, rtol: 0 };
  }
}

/** The loosest of the tolerances of these datatypes. */
export function looseTolerance(datatypes: Iterable<string>): Tolerance {
  const out = { atol: 0, rtol: 0 };
  for (const d of datatypes) {
    const t = toleranceFor(d);
    out.atol = Math.max(out.atol, t.atol);
    out.rtol = Math.max(out.rtol, t.rtol);
  }
  return out;
}
