/**
 * Sample inputs made from a model's input metadata, for probing, timing and
 * verifying when the user has no real data at hand. Seeded, so a probe (and
 * the cut it leads to) is the same on every run.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import type { ValueInfo } from '../onnx/inspect.js';
import { didYouMean } from '@ensemble/core/manifest/suggest.js';
import { allocate } from '@ensemble/core/tensor/datatypes.js';
import { toHalfBits } from '@ensemble/core/tensor/fp16.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';
import { seededRandom } from '../util/random.js';

export interface SampleOptions {
  /** Size of dim 0 when it is symbolic (and of every dim with the same name as an input's dim 0). */
  batch: number;
  /** Sizes of symbolic dims by name (default 1); a name given here wins over the batch, dim 0 included. */
  dims?: Record<string, number>;
  seed?: number;
  /**
   * Names of the inputs' symbolic dim 0. A dim of that name elsewhere (Silero VAD's state is
   * [2, batch, 128] next to an input [batch, samples]) is the batch too.
   */
  batchNames?: ReadonlySet<string>;
}

/** Names of the symbolic dim 0 of the inputs. */
export function batchDimNames(inputs: ValueInfo[]): Set<string> {
  const names = new Set<string>();
  for (const v of inputs) if (typeof v.shape[0] === 'string' && v.shape[0] !== '') names.add(v.shape[0]);
  return names;
}

/** Concrete shape for an input: a named size from `dims`, else the batch for symbolic dim 0 (and its namesakes), else 1. */
export function sampleShape(v: ValueInfo, opts: SampleOptions): number[] {
  if (!v.rankKnown) throw new EnsembleError(`input '${v.name}' has no declared shape, so no sample can be made for it`);
  return v.shape.map((d, axis) => {
    if (typeof d === 'number') return d;
    if (d !== '' && opts.dims?.[d] !== undefined) return opts.dims[d];
    if (axis === 0 || (d !== '' && opts.batchNames?.has(d))) return opts.batch;
    return 1;
  });
}

/** Throws for a `--dim` name no input uses (a typo would otherwise be ignored silently). */
export function checkDimNames(inputs: ValueInfo[], dims: Record<string, number>): void {
  const known = new Set<string>();
  for (const v of inputs) for (const d of v.shape) if (typeof d === 'string' && d !== '') known.add(d);
  for (const name of Object.keys(dims)) {
    if (!known.has(name)) {
      const list = known.size ? [...known].join(', ') : 'none';
      throw new EnsembleError(`no input has a symbolic dim '${name}'${didYouMean(name, known, true)} (symbolic dims of the inputs: ${list})`, 'usage');
    }
  }
}

/** Parses `name=value` pairs (the name may contain '=' only before the last one). */
export function parseDims(pairs: string[]): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const p of pairs) {
    const at = p.lastIndexOf('=');
    const value = Number(p.slice(at + 1));
    if (at <= 0 || !Number.isInteger(value) || value < 1) {
      throw new EnsembleError(`--dim takes name=size with a whole size >= 1, got '${p}'`, 'usage');
    }
    dims[p.slice(0, at)] = value;
  }
  return dims;
}

/**
 * One tensor per input: floats uniform in [-1, 1), integers and booleans 0
 * (an index input stays in range), strings empty.
 */
export function sampleInputs(inputs: ValueInfo[], opts: SampleOptions): Record<string, Tensor> {
  const next = seededRandom(opts.seed ?? 1);
  const out: Record<string, Tensor> = {};
  const batchNames = opts.batchNames ?? batchDimNames(inputs);
  for (const v of inputs) {
    if (!v.datatype) throw new EnsembleError(`input '${v.name}' has an element type no sample can be made for (ONNX code ${v.elemType})`);
    const shape = sampleShape(v, { ...opts, batchNames });
    const n = shape.reduce((a, b) => a * b, 1);
    const data = allocate(v.datatype, n);
    if (v.datatype === 'FP32' || v.datatype === 'FP64') {
      const f = data as Float32Array | Float64Array;
      for (let i = 0; i < n; i++) f[i] = next() * 2 - 1;
    } else if (v.datatype === 'FP16') {
      const h = data as Uint16Array;
      for (let i = 0; i < n; i++) h[i] = toHalfBits(next() * 2 - 1);
    }
    out[v.name] = { datatype: v.datatype, shape, data };
  }
  return out;
}
