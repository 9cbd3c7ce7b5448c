import type { RequestEnd } from './events.js';

/**
 * What a successful request adds to its pipeline's counters, as Triton counts
 * an ensemble (core's EnsembleContext): its items are the request's rows and
 * it is one execution of them (none for zero rows: nothing ran); its
 * compute is what its steps' batches took for it (every batch its items rode
 * in, over its stages), the moving of tensors to and from them included as
 * its input and output time; its queue is none of its own. /stats and
 * /metrics both count from here.
 */
export interface EnsembleFigures {
  items: number;
  executions: 0 | 1;
  computeInferMs: number;
  /** Moving batches to and from the stages, both directions (the stages' transfer in the run record). */
  transferMs: number;
}

export function ensembleFigures(e: RequestEnd): EnsembleFigures {
  const items = e.items ?? 1;
  let transferMs = 0;
  for (const s of e.record?.stages ?? []) transferMs += s.transferMs ?? 0;
  return { items, executions: items > 0 ? 1 : 0, computeInferMs: e.computeMs ?? 0, transferMs };
}

/** A request that ended before a version was chosen (the pipeline loading, failed or unloaded) is no version's, nor counted. */
export function countedForModel(e: RequestEnd): boolean {
  return e.version !== '';
}
