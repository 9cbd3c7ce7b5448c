/**
 * Balanced cut of a sequence: split node costs (in topological order) into k
 * contiguous, non-empty ranges whose boundaries are allowed positions, so that
 * the most expensive range is as cheap as possible (a pipeline runs at the
 * pace of its slowest stage); among such cuts, the one with the smallest sum
 * of squared range costs (the other stages as even as they can be). Both are
 * exact dynamic programs over the allowed positions; ties go to the earliest
 * boundary, so the result is deterministic.
 */
import { EnsembleError } from '@ensemble/core/errors.js';

/**
 * `allowed(p)` says whether a cut may fall before element p (1 <= p < n).
 * Returns the k - 1 boundaries, ascending.
 */
export function balancedBoundaries(costs: readonly number[], k: number, allowed: (p: number) => boolean): number[] {
  const n = costs.length;
  if (!Number.isInteger(k) || k < 1) throw new EnsembleError(`the number of stages must be a whole number >= 1, got ${k}`, 'usage');
  if (k === 1) return [];
  const total = costs.reduce((a, b) => a + b, 0) || 1;
  // Fractions of the total keep the squares well inside float range.
  const prefix = [0];
  for (const c of costs) prefix.push(prefix[prefix.length - 1] + c / total);
  const cand = [0];
  for (let p = 1; p < n; p++) if (allowed(p)) cand.push(p);
  cand.push(n);
  const m = cand.length;
  if (m - 2 < k - 1) {
    throw new EnsembleError(`cannot cut ${n} nodes into ${k} stages: only ${m - 2} places to cut (a cut may not cross a tensor without a batch dim 0)`, 'invalid_input');
  }
  const seg = (a: number, b: number): number => prefix[cand[b]] - prefix[cand[a]];

  // best[j][b]: over cuts of cand[0..b] into j ranges, the cheapest value of `score`; from[j][b]: the previous boundary.
  const solve = (score: (prev: number, s: number) => number, limit: number): { value: number; from: number[][] } => {
    let best = new Array<number>(m).fill(Infinity);
    best[0] = 0;
    const from: number[][] = [];
    for (let j = 1; j <= k; j++) {
      const next = new Array<number>(m).fill(Infinity);
      const back = new Array<number>(m).fill(-1);
      for (let b = 1; b < m; b++) {
        for (let a = 0; a < b; a++) {
          if (best[a] === Infinity) continue;
          const s = seg(a, b);
          if (s > limit) continue;
          const v = score(best[a], s);
          if (v < next[b]) { next[b] = v; back[b] = a; }
        }
      }
      from.push(back);
      best = next;
    }
    return { value: best[m - 1], from };
  };

  const minMax = solve((prev, s) => Math.max(prev, s), Infinity).value;
  const { value, from } = solve((prev, s) => prev + s * s, minMax * (1 + 1e-9) + 1e-15);
  if (value === Infinity) throw new EnsembleError(`no cut into ${k} stages found`, 'internal');
  const bounds: number[] = [];
  for (let j = k, b = m - 1; j > 1; j--) {
    b = from[j - 1][b];
    bounds.unshift(cand[b]);
  }
  return bounds;
}
