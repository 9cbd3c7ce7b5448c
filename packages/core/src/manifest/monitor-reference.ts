import { readFileSync } from 'node:fs';
import type { HistogramBins, ReferenceStats } from './types.js';
import { fail, type Scope } from './fields.js';
import type { YNode } from './parse.js';

/**
 * A drift reference file, as `ensemble monitor reference` writes it: the
 * statistics of a sample of traffic, per tensor, with the histograms of the
 * bins the manifest's monitors ask for.
 */
export interface ReferenceFile {
  pipeline: string;
  /** Request bodies the sample was read from. */
  sources: string[];
  tensors: Record<string, ReferenceTensor>;
}

export interface ReferenceTensor {
  items: number;
  values: number;
  mean: number;
  std: number;
  histograms?: { bins: HistogramBins; counts: number[] }[];
}

const cache = new Map<string, ReferenceFile | Error>();

/** The reference statistics of `tensor` in `file`, for a monitor with `bins` (if a histogram). */
export function readReferenceFile(s: Scope, field: string, node: YNode, file: string, tensor: string, bins?: HistogramBins): ReferenceStats {
  const ref = parseFile(s, field, node, file);
  const t = ref.tensors[tensor];
  const rewrite = 'write it again with `ensemble monitor reference`';
  if (!t) fail(s, field, `${file} has no statistics for tensor '${tensor}' (it has ${Object.keys(ref.tensors).map((n) => `'${n}'`).join(', ') || 'none'}): ${rewrite}`, node);
  const bad = (what: string): never => fail(s, field, `${file}: tensor '${tensor}': ${what}: ${rewrite}`, node);
  for (const key of ['items', 'values', 'mean', 'std'] as const) {
    if (typeof t[key] !== 'number' || !Number.isFinite(t[key])) bad(`'${key}' is not a number`);
  }
  if (t.items < 1 || t.values < 1) bad('it was computed from no values');
  const out: ReferenceStats = { items: t.items, values: t.values, mean: t.mean, std: t.std };
  if (bins) {
    const h = (t.histograms ?? []).find((x) => x?.bins?.min === bins.min && x.bins.max === bins.max && x.bins.count === bins.count);
    if (!h) return bad(`it has no histogram of ${bins.count} bins over [${bins.min}, ${bins.max}], the bins this monitor asks for`);
    if (!Array.isArray(h.counts) || h.counts.length !== bins.count + 2 || h.counts.some((c) => typeof c !== 'number' || !(c >= 0))) {
      bad(`its histogram needs ${bins.count + 2} counts (below min, the ${bins.count} bins, above max)`);
    }
    out.histogram = h.counts;
  }
  return out;
}

function parseFile(s: Scope, field: string, node: YNode, file: string): ReferenceFile {
  // One file usually serves every drift monitor of a pipeline: read and parse it once per load.
  let ref = cache.get(file);
  if (!ref) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as ReferenceFile;
      if (!parsed || typeof parsed !== 'object' || typeof parsed.tensors !== 'object' || parsed.tensors === null) {
        throw new Error('expected { "pipeline", "tensors": { <name>: { items, values, mean, std, histograms } } }');
      }
      ref = parsed;
    } catch (e) {
      ref = e instanceof Error ? e : new Error(String(e));
    }
    cache.set(file, ref);
    // Only for the load reading it now: a file written again is read again at the next load.
    queueMicrotask(() => cache.delete(file));
  }
  if (ref instanceof Error) fail(s, field, `cannot read the reference ${file}: ${ref.message}`, node);
  return ref;
}
