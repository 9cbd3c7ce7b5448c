import { afterAll, describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { DEFAULT_HEAP_GROWING_PERCENT, tuneHeapGrowth } from '../../src/serve/heap-growth.js';
import { EnsembleError } from '@ensemble/core/errors.js';

describe('tuneHeapGrowth', () => {
  // The setting is per process: leave this test process with V8's own heuristic.
  afterAll(() => setFlagsFromString('--heap-growing-percent=0'));

  it('sets the gateway default unless ENSEMBLE_HEAP_GROWING_PERCENT says otherwise, and 0 leaves V8 alone', () => {
    expect(tuneHeapGrowth({})).toBe(DEFAULT_HEAP_GROWING_PERCENT);
    expect(tuneHeapGrowth({ ENSEMBLE_HEAP_GROWING_PERCENT: '' })).toBe(DEFAULT_HEAP_GROWING_PERCENT);
    expect(tuneHeapGrowth({ ENSEMBLE_HEAP_GROWING_PERCENT: '150' })).toBe(150);
    expect(tuneHeapGrowth({ ENSEMBLE_HEAP_GROWING_PERCENT: '0' })).toBeUndefined();
  });

  it('refuses what is not a whole percentage from 0 to 1000, naming the variable', () => {
    for (const bad of ['-1', '1001', '2.5', 'lots', '1e9']) {
      let err: unknown;
      try { tuneHeapGrowth({ ENSEMBLE_HEAP_GROWING_PERCENT: bad }); } catch (e) { err = e; }
      expect(err, bad).toBeInstanceOf(EnsembleError);
      expect((err as EnsembleError).code).toBe('usage');
      expect((err as Error).message).toContain('ENSEMBLE_HEAP_GROWING_PERCENT');
    }
  });
});
