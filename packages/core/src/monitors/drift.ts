import type { DriftMonitor, HistogramBins, ReferenceStats } from '../manifest/types.js';
import type { Values } from './values.js';
import { withValue, type RuleResult } from './rules.js';

/**
 * A drift monitor's state: the reference (the first `window` items served,
 * or a file) and a rolling window of the last `window` items. Each item's
 * contribution (count, sum, sum of squares, bin counts) is kept in a ring, so
 * adding an item costs one pass over its values plus the bins, and the
 * window's statistics are the running totals: nothing is re-read per request.
 *
 * The histogram distance is the population stability index,
 * PSI = Σ (p − q) · ln(p / q) over the bins: it is additive over fixed bins
 * (running counts are all it needs), symmetric, and its reading is
 * conventional in model monitoring (< 0.1 stable, > 0.25 shifted). A KS-like
 * distance on binned data would only approximate the continuous test and its
 * meaning depends on the sample sizes.
 */
export class DriftWindow {
  private readonly size: number;
  private readonly bins?: HistogramBins;
  private readonly slots: number;
  /** Per item in the ring: finite values, sum and sum of squares (shifted by `shift`). */
  private readonly ring: Float64Array;
  private readonly ringCounts?: Uint32Array;
  private readonly current: Totals;
  private reference?: Totals;
  /** The first reference, while it fills. */
  private filling?: Totals;
  private filled = 0;
  private pos = 0;
  /** Sums are of x − shift, which keeps the variance exact for values far from zero. */
  private shift: number | undefined;

  constructor(readonly monitor: DriftMonitor) {
    this.size = monitor.window;
    this.bins = monitor.bins;
    this.slots = this.bins ? this.bins.count + 2 : 0;
    this.ring = new Float64Array(3 * this.size);
    if (this.bins) this.ringCounts = new Uint32Array(this.size * this.slots);
    this.current = totals(this.slots);
    const ref = monitor.reference;
    if (ref.kind === 'file') {
      this.shift = ref.stats.mean;
      this.reference = fromReference(ref.stats, this.shift, this.slots);
    } else {
      this.filling = totals(this.slots);
    }
  }

  /** Add the items of one tensor: `items` runs of `per` values each. */
  add(v: Values, items: number, per: number): void {
    this.shift ??= firstFinite(v);
    for (let i = 0; i < items; i++) this.addItem(v, i * per, (i + 1) * per);
  }

  /** The distance from the reference once both are complete, and a finding when it is over the threshold. */
  check(): RuleResult | undefined {
    if (!this.reference || this.filled < this.size) return undefined;
    const m = this.monitor;
    const ref = this.reference;
    const cur = this.current;
    const last = `the last ${this.size} items`;
    const against = m.reference.kind === 'file' ? 'the reference file' : `the first ${this.size} items`;
    const ofRef = m.reference.kind === 'file' ? "the reference file's" : `the first ${this.size} items'`;
    if (m.stat === 'histogram') {
      const psi = stabilityIndex(cur.counts!, ref.counts!);
      if (!(psi > m.threshold)) return undefined;
      return withValue({ message: `the histogram of ${last} is ${fmt(psi)} (PSI) from ${against}, over the threshold ${m.threshold}` }, psi);
    }
    const [meanC, stdC] = moments(cur, this.shift ?? 0);
    const [meanR, stdR] = moments(ref, this.shift ?? 0);
    if (m.stat === 'mean') {
      const d = Math.abs(meanC - meanR) / stdR;
      if (!(d > m.threshold) && !(stdR === 0 && meanC !== meanR)) return undefined;
      return withValue({ message: `mean of ${last} is ${fmt(meanC)}, ${fmt(d)} reference standard deviations from ${ofRef} mean ${fmt(meanR)} (threshold ${m.threshold})` }, d);
    }
    const d = Math.abs(stdC / stdR - 1);
    if (!(d > m.threshold) && !(stdR === 0 && stdC !== 0)) return undefined;
    return withValue({ message: `standard deviation of ${last} is ${fmt(stdC)}, ${fmt(d * 100)}% off ${ofRef} ${fmt(stdR)} (threshold ${m.threshold * 100}%)` }, d);
  }

  private addItem(v: Values, from: number, to: number): void {
    const shift = this.shift ?? 0;
    if (this.filling) {
      accumulate(this.filling, v, from, to, shift, this.bins, this.filling.counts);
      if (++this.filling.items === this.size) { this.reference = this.filling; this.filling = undefined; }
      return;
    }
    const slot = this.pos;
    const cur = this.current;
    const r = this.ring;
    if (this.filled === this.size) {
      cur.values -= r[3 * slot]; cur.sum -= r[3 * slot + 1]; cur.sumSq -= r[3 * slot + 2];
      if (this.ringCounts) {
        const base = slot * this.slots;
        for (let b = 0; b < this.slots; b++) { cur.counts![b] -= this.ringCounts[base + b]; this.ringCounts[base + b] = 0; }
      }
    } else {
      this.filled++;
    }
    const item = ITEM;
    item.values = 0; item.sum = 0; item.sumSq = 0;
    const counts = this.ringCounts?.subarray(slot * this.slots, (slot + 1) * this.slots);
    accumulate(item, v, from, to, shift, this.bins, counts);
    r[3 * slot] = item.values; r[3 * slot + 1] = item.sum; r[3 * slot + 2] = item.sumSq;
    cur.values += item.values; cur.sum += item.sum; cur.sumSq += item.sumSq;
    if (counts) for (let b = 0; b < this.slots; b++) cur.counts![b] += counts[b];
    this.pos = (slot + 1) % this.size;
    // Adding and taking away floats drifts by rounding: once per full turn of the ring, sum it afresh.
    if (this.pos === 0 && this.filled === this.size) this.resum();
  }

  private resum(): void {
    const cur = this.current;
    cur.values = 0; cur.sum = 0; cur.sumSq = 0;
    for (let s = 0; s < this.size; s++) { cur.values += this.ring[3 * s]; cur.sum += this.ring[3 * s + 1]; cur.sumSq += this.ring[3 * s + 2]; }
    if (this.ringCounts) {
      cur.counts!.fill(0);
      for (let s = 0; s < this.size; s++) for (let b = 0; b < this.slots; b++) cur.counts![b] += this.ringCounts[s * this.slots + b];
    }
  }
}

/** Running totals of some items' finite values. */
export interface Totals {
  items: number;
  values: number;
  sum: number;
  sumSq: number;
  /** Per bin: below min, the bins, above max. */
  counts?: Float64Array;
}

export function totals(slots: number): Totals {
  const t: Totals = { items: 0, values: 0, sum: 0, sumSq: 0 };
  if (slots) t.counts = new Float64Array(slots);
  return t;
}

const ITEM: Totals = totals(0);

/** Add values [from, to) to `t` (sums of x − shift) and to `counts` per bin; NaN and ±Infinity are the finite rule's. */
export function accumulate(t: Totals, v: Values, from: number, to: number, shift: number, bins: HistogramBins | undefined, counts: { [i: number]: number } | undefined): void {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  const width = bins ? (bins.max - bins.min) / bins.count : 0;
  for (let i = from; i < to; i++) {
    const x = v.direct ? v.direct[i] : v.at(i);
    if (!Number.isFinite(x)) continue;
    n++;
    const y = x - shift;
    sum += y;
    sumSq += y * y;
    if (bins && counts) counts[binOf(x, bins, width)]++;
  }
  t.values += n;
  t.sum += sum;
  t.sumSq += sumSq;
}

export function binOf(x: number, bins: HistogramBins, width = (bins.max - bins.min) / bins.count): number {
  if (x < bins.min) return 0;
  if (x >= bins.max) return bins.count + 1;
  return 1 + Math.min(bins.count - 1, Math.floor((x - bins.min) / width));
}

/** Mean and (population) standard deviation of totals summed as x − shift. */
export function moments(t: Totals, shift: number): [number, number] {
  if (t.values === 0) return [NaN, NaN];
  const m = t.sum / t.values;
  return [m + shift, Math.sqrt(Math.max(0, t.sumSq / t.values - m * m))];
}

/** Bins empty on one side would make the index infinite: proportions are floored at this, as is usual for PSI. */
const PSI_FLOOR = 1e-4;

export function stabilityIndex(current: ArrayLike<number>, reference: ArrayLike<number>): number {
  let nc = 0;
  let nr = 0;
  for (let i = 0; i < current.length; i++) { nc += current[i]; nr += reference[i]; }
  if (nc === 0 || nr === 0) return 0;
  let psi = 0;
  for (let i = 0; i < current.length; i++) {
    const p = Math.max(current[i] / nc, PSI_FLOOR);
    const q = Math.max(reference[i] / nr, PSI_FLOOR);
    psi += (p - q) * Math.log(p / q);
  }
  return psi;
}

function fromReference(s: ReferenceStats, shift: number, slots: number): Totals {
  // Sums as they would have been accumulated around `shift`: Σ(x − k) = n(μ − k), Σ(x − k)² = n(σ² + (μ − k)²).
  const d = s.mean - shift;
  const t: Totals = { items: s.items, values: s.values, sum: s.values * d, sumSq: s.values * (s.std * s.std + d * d) };
  if (slots && s.histogram) t.counts = Float64Array.from(s.histogram);
  return t;
}

function firstFinite(v: Values): number | undefined {
  for (let i = 0; i < v.length; i++) {
    const x = v.at(i);
    if (Number.isFinite(x)) return x;
  }
  return undefined;
}

function fmt(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x);
}
