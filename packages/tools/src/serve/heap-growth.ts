import { setFlagsFromString } from 'node:v8';
import { EnsembleError } from '@ensemble/core/errors.js';

/**
 * How far V8 lets the gateway's old generation grow past what survived the
 * last full collection before it marks again: (1 + percent / 100) times.
 *
 * A gateway's JavaScript heap is small (about 40 MB live serving OCR) while
 * each request allocates megabytes of ArrayBuffers (the decoded page, the
 * detector's input, the frames to and from the stage workers), which V8
 * counts against that limit. With V8's own factor (about 1.7 here) the
 * ArrayBuffers alone reach it every few images: serving OCR at concurrency
 * 16, and at any concurrency after it, the gateway ran a full mark-compact
 * every three images (13 to 15 per 48). With 4x it ran 1 or 2, and the
 * gateway's CPU per image fell by about a third, for about 40 MB more RSS
 * under load (docs/benchmarks.md). It is read at each collection, so setting
 * it after start-up takes effect.
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 300;

/** Applies ENSEMBLE_HEAP_GROWING_PERCENT (default 300; 0 leaves V8's own heuristic); returns what was set, or undefined. */
export function tuneHeapGrowth(vars: Record<string, string | undefined> = process.env): number | undefined {
  const raw = vars.ENSEMBLE_HEAP_GROWING_PERCENT;
  const percent = raw === undefined || raw === '' ? DEFAULT_HEAP_GROWING_PERCENT : Number(raw);
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new EnsembleError(`ENSEMBLE_HEAP_GROWING_PERCENT must be an integer from 0 to 1000, got '${raw}'`, 'usage');
  }
  if (percent === 0) return undefined;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
