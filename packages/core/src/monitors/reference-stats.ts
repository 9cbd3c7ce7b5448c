import type { HistogramBins, Manifest } from '../manifest/types.js';
import type { ReferenceFile, ReferenceTensor } from '../manifest/monitor-reference.js';
import type { Tensor } from '../tensor/types.js';
import { valuesOf } from './values.js';
import { accumulate, moments, totals, type Totals } from './drift.js';

/**
 * The statistics a drift monitor compares with, computed from a sample of
 * requests' inputs: what `ensemble monitor reference` writes. The sums are
 * the drift windows' own (the same accumulation, the same bins), so a
 * sample served again reads as no drift.
 */
export class ReferenceBuilder {
  private readonly tensors = new Map<string, { totals: Totals; shift?: number; histograms: { bins: HistogramBins; counts: Float64Array }[] }>();

  constructor(private readonly manifest: Manifest) {
    for (const spec of manifest.inputs) {
      if (spec.datatype === 'BYTES' || spec.datatype === 'BOOL') continue;
      const bins = (spec.monitors ?? []).flatMap((m) => (m.rule === 'drift' && m.bins ? [m.bins] : []));
      const unique = bins.filter((b, i) => bins.findIndex((x) => x.min === b.min && x.max === b.max && x.count === b.count) === i);
      this.tensors.set(spec.name, { totals: totals(0), histograms: unique.map((b) => ({ bins: b, counts: new Float64Array(b.count + 2) })) });
    }
  }

  /** Add one request's inputs. */
  add(inputs: Record<string, Tensor>): void {
    for (const spec of this.manifest.inputs) {
      const acc = this.tensors.get(spec.name);
      const t = inputs[spec.name];
      const v = t && valuesOf(t);
      if (!acc || !t || !v) continue;
      acc.shift ??= v.length ? v.at(0) : undefined;
      const items = spec.perRequest ? 1 : t.shape[spec.batchAxis ?? 0];
      accumulate(acc.totals, v, 0, v.length, acc.shift ?? 0, undefined, undefined);
      for (const h of acc.histograms) accumulate(totals(0), v, 0, v.length, 0, h.bins, h.counts);
      acc.totals.items += items;
    }
  }

  result(sources: string[]): ReferenceFile {
    const out: ReferenceFile = { pipeline: this.manifest.name, sources, tensors: {} };
    for (const [name, acc] of this.tensors) {
      if (acc.totals.values === 0) continue;
      const [mean, std] = moments(acc.totals, acc.shift ?? 0);
      const t: ReferenceTensor = { items: acc.totals.items, values: acc.totals.values, mean, std };
      if (acc.histograms.length) t.histograms = acc.histograms.map((h) => ({ bins: h.bins, counts: Array.from(h.counts) }));
      out.tensors[name] = t;
    }
    return out;
  }
}
