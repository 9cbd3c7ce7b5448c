/**
 * A reader of the Prometheus text exposition format (version 0.0.4), strict
 * enough to fail on what a Prometheus server would refuse: every sample
 * belongs to a family declared by `# TYPE` before it, names and label names
 * are valid, values are numbers, no series appears twice.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, MetricType>;
  help: Map<string, string>;
  samples: Sample[];
  /** The samples of `name` whose labels include `labels`, summed (0 when none). */
  value(name: string, labels?: Record<string, string>): number;
  /** The samples of `name` whose labels include `labels`. */
  find(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

export function parseExposition(text: string): Exposition {
  const types = new Map<string, MetricType>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`bad type, ${where}`);
        if (types.has(name)) throw new Error(`second TYPE, ${where}`);
        types.set(name, rest as MetricType);
      } else help.set(name, rest);
      return;
    }
    if (line.startsWith('#')) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample, ${where}`);
    const [, name, , body, raw] = m;
    const labels = body === undefined ? {} : parseLabels(body, where);
    const value = floatValue(raw);
    if (value === undefined) throw new Error(`bad value, ${where}`);
    if (!familyOf(name, types)) throw new Error(`sample of no declared family, ${where}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`series twice, ${where}`);
    seen.add(key);
    samples.push({ name, labels, value });
  });
  const find = (name: string, want: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  return { types, help, samples, find, value: (name, want) => find(name, want).reduce((a, s) => a + s.value, 0) };
}

/** As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`). */
function floatValue(raw: string): number | undefined {
  const lower = raw.toLowerCase();
  if (lower === 'nan') return NaN;
  if (/^[+-]?inf(inity)?$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity;
  const n = Number(raw);
  return raw.trim() === '' || Number.isNaN(n) ? undefined : n;
}

function familyOf(sample: string, types: Map<string, MetricType>): string | undefined {
  if (types.has(sample) && types.get(sample) !== 'histogram') return sample;
  for (const [family, type] of types) {
    for (const suffix of SUFFIXES[type] ?? []) if (suffix && sample === family + suffix) return family;
  }
  return undefined;
}

function parseLabels(body: string, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    const name = body.slice(i, eq);
    if (eq < 0 || !LABEL.test(name) || body[eq + 1] !== '"') throw new Error(`bad label, ${where}`);
    let j = eq + 2;
    let value = '';
    for (; j < body.length && body[j] !== '"'; j++) {
      if (body[j] === '\\') {
        const next = body[++j];
        value += next === 'n' ? '\n' : next;
      } else value += body[j];
    }
    if (j >= body.length) throw new Error(`unterminated label value, ${where}`);
    if (name in out) throw new Error(`label twice, ${where}`);
    out[name] = value;
    i = j + 1;
    if (body[i] === ',') i++;
  }
  return out;
}
