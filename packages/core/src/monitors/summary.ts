import type { Values } from './values.js';

/** What the range and finite rules read, gathered in one pass over a tensor's values. */
export interface ValueSummary {
  count: number;
  /** Smallest and largest value, NaN left out (Infinity counts: it is out of any finite range). */
  min: number;
  max: number;
  nan: number;
  infinite: number;
}

export function summarize(v: Values): ValueSummary {
  let min = Infinity;
  let max = -Infinity;
  let nan = 0;
  let infinite = 0;
  const n = v.length;
  const d = v.direct;
  // Two copies of one loop: the direct one is what typed arrays of numbers take, with no call per element.
  if (d) {
    for (let i = 0; i < n; i++) {
      const x = d[i];
      if (x !== x) { nan++; continue; }
      if (x < min) min = x;
      if (x > max) max = x;
      if (x === Infinity || x === -Infinity) infinite++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const x = v.at(i);
      if (x !== x) { nan++; continue; }
      if (x < min) min = x;
      if (x > max) max = x;
      if (x === Infinity || x === -Infinity) infinite++;
    }
  }
  return { count: n, min, max, nan, infinite };
}
