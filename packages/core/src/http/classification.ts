/**
 * Triton's classification extension: `parameters.classification: k` on a
 * requested output turns that output into a BYTES tensor [items, k] of the
 * top k classes of each item, "value:index" or "value:index:label", highest
 * value first. An item's classes are all its elements (every dim but the
 * item dim, flattened row-major).
 */
import { BadRequestError, clip } from '../errors.js';
import { fromHalfBits } from '../tensor/fp16.js';
import type { Manifest, TensorSpec } from '../manifest/types.js';
import type { InferRequestJson } from '../tensor/protocol.js';
import type { Tensor } from '../tensor/types.js';

const utf8 = new TextEncoder();
/** Triton's own limit on the elements it ranks per item. */
const MAX_CLASSES = 1_000_000;
const NOT_CLASSIFIABLE = new Set(['BYTES', 'BOOL']);

/**
 * The outputs the request asks to classify, with their k; 400 for a k that is
 * not a positive integer, a non-numeric output, or (when the manifest fixes
 * the class count) a k beyond it — before anything runs.
 */
export function classificationsAsked(m: Manifest, request: InferRequestJson): Map<string, number> {
  const asked = new Map<string, number>();
  for (const o of request.outputs ?? []) {
    const k = o.parameters?.classification;
    if (k === undefined) continue;
    const where = `requested output '${clip(o.name)}'`;
    if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) {
      throw new BadRequestError(`${where}: classification must be a positive integer (how many classes to return), got ${clip(JSON.stringify(k) ?? String(k))}`);
    }
    const spec = m.outputs.find((s) => s.name === o.name);
    if (!spec) continue; // requestedOutputs names the unknown output
    if (NOT_CLASSIFIABLE.has(spec.datatype)) {
      throw new BadRequestError(`${where}: classification needs a numeric output; '${spec.name}' is ${spec.datatype}`);
    }
    if (spec.batchAxis) throw new BadRequestError(`${where}: classification ranks items along dim 0; '${spec.name}' has its items on axis ${spec.batchAxis}`);
    const classes = staticClasses(spec);
    if (classes !== undefined && k > classes) {
      throw new BadRequestError(`${where}: classification ${k} is more than the ${classes} classes of each item`);
    }
    asked.set(o.name, k);
  }
  return asked;
}

function staticClasses(spec: TensorSpec): number | undefined {
  const rest = spec.shape.slice(1);
  return rest.every((d) => d > 0) ? rest.reduce((a, b) => a * b, 1) : undefined;
}

/** Ranks by value, highest first; ties by lower index; NaN last. */
function values(t: Tensor): (i: number) => number | bigint {
  const d = t.data;
  if (t.datatype === 'FP16') return (i) => fromHalfBits((d as Uint16Array)[i]);
  return (i) => (d as ArrayLike<number | bigint>)[i];
}

/**
 * Written as Triton's server writes them (C++ std::to_string): integers in
 * decimal, floats with six decimals ("3.300000"), so clients parse one form.
 */
function format(v: number | bigint, float: boolean): string {
  if (typeof v === 'bigint' || !float) return String(v);
  return Number.isFinite(v) ? v.toFixed(6) : String(v).toLowerCase().replace('infinity', 'inf');
}

export function classifyOutput(name: string, t: Tensor, k: number, labels?: readonly string[]): Tensor {
  const where = `requested output '${clip(name)}'`;
  if (NOT_CLASSIFIABLE.has(t.datatype)) throw new BadRequestError(`${where}: classification needs a numeric output; '${name}' is ${t.datatype}`);
  const items = t.shape[0] ?? 1;
  const count = t.data.length;
  const classes = items === 0 ? 0 : count / items;
  if (items > 0 && k > classes) throw new BadRequestError(`${where}: classification ${k} is more than the ${classes} classes of each item`);
  if (classes > MAX_CLASSES) throw new BadRequestError(`${where}: ${classes} classes per item is over the ${MAX_CLASSES} classification ranks`);
  const at = values(t);
  const float = t.datatype.startsWith('FP');
  const out: Uint8Array[] = [];
  const idx = new Array<number>(classes);
  for (let item = 0; item < items; item++) {
    const base = item * classes;
    for (let j = 0; j < classes; j++) idx[j] = j;
    idx.sort((a, b) => {
      const va = at(base + a);
      const vb = at(base + b);
      const na = typeof va === 'number' && Number.isNaN(va);
      const nb = typeof vb === 'number' && Number.isNaN(vb);
      if (na || nb) return na === nb ? a - b : na ? 1 : -1;
      return va > vb ? -1 : va < vb ? 1 : a - b;
    });
    for (let j = 0; j < k; j++) {
      const c = idx[j];
      const label = labels?.[c];
      out.push(utf8.encode(`${format(at(base + c), float)}:${c}${label === undefined ? '' : `:${label}`}`));
    }
  }
  return { datatype: 'BYTES', shape: [items, k], data: out };
}
