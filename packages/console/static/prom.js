// The Prometheus text exposition format, read in the browser: enough of it
// for the console's charts (samples with labels; comments and timestamps skipped).

/** @typedef {{ name: string, labels: Record<string, string>, value: number }} Sample */

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;

/**
 * @param {string} text
 * @returns {Sample[]}
 */
export function parsePrometheus(text) {
  /** @type {Sample[]} */
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    /** @type {Record<string, string>} */
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    out.push({ name: m[1], labels, value: number(m[3]) });
  }
  return out;
}

/** @param {string} v */
function number(v) {
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/**
 * Sum of the samples named `name` whose labels match `where`.
 * @param {Sample[]} samples @param {string} name @param {Record<string, string>} [where]
 * @returns {number | undefined} undefined when no sample matches
 */
export function total(samples, name, where = {}) {
  let sum;
  for (const x of samples) {
    if (x.name !== name) continue;
    if (Object.entries(where).some(([k, v]) => x.labels[k] !== v)) continue;
    sum = (sum ?? 0) + x.value;
  }
  return sum;
}

/**
 * A histogram's cumulative buckets (le -> count) for the samples of
 * `${name}_bucket` matching `where`, summed over the other labels.
 * @param {Sample[]} samples @param {string} name @param {Record<string, string>} [where]
 * @returns {[number, number][]} [upper bound, cumulative count], ascending
 */
export function buckets(samples, name, where = {}) {
  /** @type {Map<number, number>} */
  const by = new Map();
  for (const x of samples) {
    if (x.name !== `${name}_bucket`) continue;
    if (Object.entries(where).some(([k, v]) => x.labels[k] !== v)) continue;
    const le = number(x.labels.le ?? '+Inf');
    by.set(le, (by.get(le) ?? 0) + x.value);
  }
  return [...by].sort((a, b) => a[0] - b[0]);
}

/**
 * The name of the first histogram in `samples` whose name matches `pattern`
 * (metric names the console reads by what they hold, not by their exact spelling).
 * @param {Sample[]} samples @param {RegExp} pattern
 */
export function findHistogram(samples, pattern) {
  for (const x of samples) {
    if (x.name.endsWith('_bucket') && pattern.test(x.name)) return x.name.slice(0, -'_bucket'.length);
  }
  return undefined;
}

/**
 * @param {Sample[]} samples @param {RegExp} pattern
 */
export function findMetric(samples, pattern) {
  return samples.find((x) => pattern.test(x.name))?.name;
}
