/** The candidate closest to `word` if it is a plausible typo of it. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const limit = Math.max(1, Math.floor(word.length / 3));
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  // A distance as long as the word means nothing was kept: no suggestion for 'q' -> 'x'.
  return bestDistance <= limit && bestDistance < word.length ? best : undefined;
}

/** " (did you mean x?)" or "". */
export function didYouMean(word: string, candidates: Iterable<string>, quote = false): string {
  const c = closest(word, candidates);
  if (c === undefined) return '';
  return ` (did you mean ${quote ? `'${c}'` : c}?)`;
}

/** Optimal string alignment distance: Levenshtein plus adjacent swaps (szie -> size). */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
