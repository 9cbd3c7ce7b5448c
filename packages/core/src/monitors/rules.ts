import type { FiniteMonitor, RangeMonitor, ShapeMonitor, TensorSpec } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import type { ValueSummary } from './summary.js';

/** What a rule found, before the monitor's action and tensor are attached. */
export interface RuleResult {
  message: string;
  value?: number;
}

export function checkRange(m: RangeMonitor, s: ValueSummary): RuleResult | undefined {
  if (s.count === s.nan) return undefined;
  const bounds = `[${m.min ?? '-∞'}, ${m.max ?? '∞'}]`;
  const low = m.min !== undefined && s.min < m.min;
  const high = m.max !== undefined && s.max > m.max;
  if (!low && !high) return undefined;
  const parts = [low ? `${s.min} (below min ${m.min})` : '', high ? `${s.max} (above max ${m.max})` : ''].filter(Boolean);
  // The value further out of bounds is the one to chart.
  const value = low && high ? (m.min! - s.min > s.max - m.max! ? s.min : s.max) : low ? s.min : s.max;
  return withValue({ message: `values reach ${parts.join(' and ')}, outside ${bounds}` }, value);
}

export function checkFinite(_m: FiniteMonitor, s: ValueSummary): RuleResult | undefined {
  const bad = s.nan + s.infinite;
  if (bad === 0) return undefined;
  const kinds = [s.nan ? `${s.nan} NaN` : '', s.infinite ? `${s.infinite} infinite` : ''].filter(Boolean).join(', ');
  return { message: `${bad} of ${s.count} values are not finite (${kinds})`, value: bad };
}

/** Shape bounds per item: the tensor's dims without its item axis, its elements per item, its BYTES lengths. */
export function checkShape(m: ShapeMonitor, spec: TensorSpec, t: Tensor): RuleResult | undefined {
  const axis = spec.perRequest ? -1 : spec.batchAxis ?? 0;
  for (let i = 0; i < t.shape.length; i++) {
    if (i === axis) continue;
    const d = t.shape[i];
    const lo = m.minShape?.[i] ?? -1;
    const hi = m.maxShape?.[i] ?? -1;
    if (lo >= 0 && d < lo) return { message: `dim ${i} is ${d}, below min_shape's ${lo} (shape [${t.shape}])`, value: d };
    if (hi >= 0 && d > hi) return { message: `dim ${i} is ${d}, over max_shape's ${hi} (shape [${t.shape}])`, value: d };
  }
  if (m.minElements !== undefined || m.maxElements !== undefined) {
    let per = 1;
    for (let i = 0; i < t.shape.length; i++) if (i !== axis) per *= t.shape[i];
    if (m.minElements !== undefined && per < m.minElements) return { message: `${per} elements per item, below min_elements ${m.minElements}`, value: per };
    if (m.maxElements !== undefined && per > m.maxElements) return { message: `${per} elements per item, over max_elements ${m.maxElements}`, value: per };
  }
  if ((m.minLength !== undefined || m.maxLength !== undefined) && Array.isArray(t.data)) {
    const lo = m.minLength ?? 0;
    const hi = m.maxLength ?? Infinity;
    const els = t.data;
    for (let i = 0; i < els.length; i++) {
      const n = els[i].length;
      if (n < lo) return { message: `element ${i} is ${n} bytes, below min_length ${lo}`, value: n };
      if (n > hi) return { message: `element ${i} is ${n} bytes, over max_length ${hi}`, value: n };
    }
  }
  return undefined;
}

/** A run record holds numbers DynamoDB can store: an infinite value stays in the message only. */
export function withValue(r: RuleResult, value: number): RuleResult {
  if (Number.isFinite(value)) r.value = value;
  return r;
}
