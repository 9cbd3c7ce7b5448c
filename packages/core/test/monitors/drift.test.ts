import { describe, expect, it } from 'vitest';
import { DriftWindow, stabilityIndex } from '../../src/monitors/drift.js';
import { valuesOf } from '../../src/monitors/values.js';
import type { DriftMonitor } from '../../src/manifest/types.js';

const items = (rows: number[]) => valuesOf({ datatype: 'FP64', shape: [rows.length, 1], data: Float64Array.from(rows) })!;
const mean = (window: number, threshold: number): DriftMonitor => ({ rule: 'drift', action: 'record', stat: 'mean', window, threshold, reference: { kind: 'window' } });

describe('drift windows', () => {
  it('compares the last window with the first, item by item, across many turns of the ring', () => {
    const d = new DriftWindow(mean(3, 1));
    d.add(items([1e6 + 1, 1e6 + 2, 1e6 + 3]), 3, 1);
    expect(d.check()).toBeUndefined();
    // 300 turns of the ring of values far from zero: the window is still exactly the last three items.
    for (let i = 0; i < 900; i++) d.add(items([1e6 + 1 + (i % 3)]), 1, 1);
    expect(d.check()).toBeUndefined();
    d.add(items([1e6 + 10, 1e6 + 10, 1e6 + 10]), 3, 1);
    const r = d.check()!;
    // Reference mean 1e6+2, std sqrt(2/3): the window's 1e6+10 is 8 / 0.8165 = 9.798 deviations off.
    expect(r.value).toBeCloseTo(8 / Math.sqrt(2 / 3), 6);
  });

  it('reads a histogram shift as the population stability index', () => {
    expect(stabilityIndex([25, 25, 25, 25], [25, 25, 25, 25])).toBe(0);
    // (0.4-0.1)ln4 + (0.1-0.4)ln(1/4) + 0 + 0 = 0.6 ln 4
    expect(stabilityIndex([40, 10, 25, 25], [10, 40, 25, 25])).toBeCloseTo(0.6 * Math.log(4), 12);
    const d = new DriftWindow({ rule: 'drift', action: 'record', stat: 'histogram', window: 4, threshold: 0.25, bins: { min: 0, max: 1, count: 2 }, reference: { kind: 'window' } });
    d.add(items([0.1, 0.2, 0.6, 0.7]), 4, 1);
    d.add(items([0.1, 0.3, 0.8, 0.9]), 4, 1);
    expect(d.check()).toBeUndefined();
    d.add(items([0.8, 0.9, 0.95, 0.99]), 4, 1);
    expect(d.check()?.message).toMatch(/^the histogram of the last 4 items is [\d.]+ \(PSI\) from the first 4 items, over the threshold 0.25$/);
  });
});
