import { describe, expect, it } from 'vitest';
import { per1000Note } from '../../src/bench/energy.js';
import { processAssumptions } from '@ensemble/core/observability/assumptions.js';

describe('bench energy notes', () => {
  it('turns CPU ms per request into joules and grams per 1,000 at the run records\' figures', () => {
    const a = processAssumptions();
    // 2 ms per request, 1,000 requests: 2 CPU-seconds at W per core.
    const j = 2 * a.wattsPerCore;
    const g = (j / 3_600_000) * a.gridGPerKwh;
    const note = per1000Note(2);
    expect(note).toMatch(/ J, .* gCO2e per 1,000 requests$/);
    expect(Number(note.split(' J')[0])).toBeCloseTo(j, 1);
    expect(Number(note.split(', ')[1].split(' ')[0])).toBeCloseTo(g, 3);
    expect(per1000Note(2, 'images')).toMatch(/per 1,000 images$/);
  });
});
