import path from 'node:path';
import type {
  DriftMonitor, DriftReference, DriftStat, HistogramBins, MonitorAction, MonitorSpec, ObserverSpec, ShapeMonitor, TensorSpec,
} from './types.js';
import { child, fail, need, readEnum, readInt, readList, readMap, readNumber, readString, type Scope } from './fields.js';
import { toPlain, type YNode } from './parse.js';
import { readReferenceFile } from './monitor-reference.js';

/**
 * The `monitors:` of a pipeline input or output and the pipeline's
 * `observers:`, read from the YAML. Every rule is checked against the
 * tensor it watches here, at load, so a monitor that could never apply
 * (a range on BYTES, a drift on a padded output) is refused with its field.
 */

export const MONITOR_RULES = ['range', 'finite', 'shape', 'drift'] as const;
const ACTIONS = ['record', 'reject'] as const;
const DRIFT_STATS = ['mean', 'std', 'histogram'] as const;
const REFERENCES = ['window', 'file'] as const;
const FLOATS = new Set(['FP16', 'FP32', 'FP64']);

const KEYS: Record<MonitorSpec['rule'], readonly string[]> = {
  range: ['rule', 'action', 'min', 'max'],
  finite: ['rule', 'action'],
  shape: ['rule', 'action', 'min_shape', 'max_shape', 'min_elements', 'max_elements', 'min_length', 'max_length'],
  drift: ['rule', 'action', 'stat', 'reference', 'window', 'file', 'threshold', 'bins', 'min', 'max'],
};

/** Most items a drift window holds, and most histogram bins: bounded memory per monitor (window x bins counts). */
export const MAX_DRIFT_WINDOW = 100_000;
export const MAX_HISTOGRAM_BINS = 100;
export const DEFAULT_DRIFT_WINDOW = 1000;
/** The usual reading of PSI: under 0.1 no shift, 0.1 to 0.25 a moderate one, over 0.25 a significant one. */
export const DEFAULT_PSI_THRESHOLD = 0.25;

/** `monitors:` of the pipeline input or output `spec`, checked against it; errors name the tensor. */
export function readMonitors(s: Scope, node: YNode, role: 'input' | 'output', spec: TensorSpec, dir: string): MonitorSpec[] {
  const ts: Scope = { loc: s.loc, where: `${role} '${spec.name}'`, readReferences: s.readReferences };
  return readList(ts, node, 'monitors').map((item, i) => readMonitor(ts, item, `monitors[${i}]`, spec, dir));
}

function readMonitor(s: Scope, node: YNode, field: string, spec: TensorSpec, dir: string): MonitorSpec {
  const ruleNode = node.kind === 'map' ? node.entries.get('rule')?.value : undefined;
  if (node.kind !== 'map') fail(s, field, `a monitor is a mapping such as { rule: range, min: 0, max: 1, action: reject }`, node);
  const rule = readEnum(s, need(s, ruleNode, child(field, 'rule'), `required: one of ${MONITOR_RULES.join(', ')}`), child(field, 'rule'), MONITOR_RULES);
  const m = readMap(s, node, field, KEYS[rule]);
  const about = `tensor '${spec.name}'`;
  const action: MonitorAction = m.action ? readEnum(s, m.action, child(field, 'action'), ACTIONS) : 'record';
  const numeric = (what: string) => {
    if (spec.datatype === 'BYTES') fail(s, child(field, 'rule'), `${about} is BYTES: ${what} reads numbers (the shape rule bounds BYTES lengths)`, ruleNode);
  };
  const valuesPadded = (what: string) => {
    if (spec.ragged) fail(s, child(field, 'rule'), `${about} is ragged: its padding would be read as values, so ${what} does not apply (the shape rule does)`, ruleNode);
  };

  switch (rule) {
    case 'range': {
      numeric('a range');
      valuesPadded('a range');
      const out: MonitorSpec = { rule, action };
      if (m.min) out.min = readNumber(s, m.min, child(field, 'min'));
      if (m.max) out.max = readNumber(s, m.max, child(field, 'max'));
      if (out.min === undefined && out.max === undefined) fail(s, field, 'a range monitor needs min, max or both', node);
      if (out.min !== undefined && out.max !== undefined && out.min > out.max) fail(s, child(field, 'max'), `${out.max} is below min ${out.min}`, m.max);
      return out;
    }
    case 'finite':
      if (!FLOATS.has(spec.datatype)) fail(s, child(field, 'rule'), `${about} is ${spec.datatype}: only FP16, FP32 and FP64 values can be NaN or Infinity`, ruleNode);
      valuesPadded('finite');
      return { rule, action };
    case 'shape':
      return readShapeMonitor(s, m, field, spec, action, node);
    case 'drift': {
      numeric('a drift');
      valuesPadded('a drift');
      if (m.action && action !== 'record') {
        fail(s, child(field, 'action'), 'drift describes recent traffic, not one request: its action is record (a request-level bound is a range or shape rule)', m.action);
      }
      if ((spec.batchAxis ?? 0) !== 0) fail(s, child(field, 'rule'), `${about} has batch_axis ${spec.batchAxis}: drift reads items along dim 0`, ruleNode);
      return readDrift(s, m, field, spec, dir);
    }
  }
}

function readShapeMonitor(s: Scope, m: Record<string, YNode | undefined>, field: string, spec: TensorSpec, action: MonitorAction, node: YNode): ShapeMonitor {
  const out: ShapeMonitor = { rule: 'shape', action };
  const itemAxis = spec.perRequest ? -1 : spec.batchAxis ?? 0;
  for (const [key, prop] of [['min_shape', 'minShape'], ['max_shape', 'maxShape']] as const) {
    const n = m[key];
    if (!n) continue;
    const f = child(field, key);
    const dims = readList(s, n, f).map((d, i) => readInt(s, d, `${f}[${i}]`, -1));
    if (dims.length !== spec.shape.length) fail(s, f, `has ${dims.length} dimensions; tensor '${spec.name}' has ${spec.shape.length} [${spec.shape}]`, n);
    if (itemAxis >= 0 && dims[itemAxis] !== -1) fail(s, `${f}[${itemAxis}]`, `dim ${itemAxis} counts the items: bound it with max_items, write -1 here`, n);
    out[prop] = dims;
  }
  for (const [key, prop] of [['min_elements', 'minElements'], ['max_elements', 'maxElements']] as const) {
    if (m[key]) out[prop] = readInt(s, m[key], child(field, key), 0);
  }
  for (const [key, prop] of [['min_length', 'minLength'], ['max_length', 'maxLength']] as const) {
    if (!m[key]) continue;
    if (spec.datatype !== 'BYTES') fail(s, child(field, key), `tensor '${spec.name}' is ${spec.datatype}: lengths bound BYTES elements (for a number of elements, use ${key.replace('length', 'elements')})`, m[key]);
    out[prop] = readInt(s, m[key], child(field, key), 0);
  }
  const bounds = ['minShape', 'maxShape', 'minElements', 'maxElements', 'minLength', 'maxLength'] as const;
  if (!bounds.some((b) => out[b] !== undefined)) {
    fail(s, field, 'a shape monitor needs a bound: min_shape, max_shape, min_elements, max_elements, min_length or max_length', node);
  }
  return out;
}

function readDrift(s: Scope, m: Record<string, YNode | undefined>, field: string, spec: TensorSpec, dir: string): DriftMonitor {
  const stat = readEnum<DriftStat>(s, need(s, m.stat, child(field, 'stat'), 'required: mean, std or histogram'), child(field, 'stat'), DRIFT_STATS);
  const window = m.window ? readInt(s, m.window, child(field, 'window'), 1, MAX_DRIFT_WINDOW) : DEFAULT_DRIFT_WINDOW;
  let bins: HistogramBins | undefined;
  if (stat === 'histogram') {
    const bf = child(field, 'bins');
    const count = readInt(s, need(s, m.bins, bf, `required for a histogram: the number of equal bins between min and max (at most ${MAX_HISTOGRAM_BINS})`), bf, 1, MAX_HISTOGRAM_BINS);
    const min = readNumber(s, need(s, m.min, child(field, 'min'), 'required for a histogram: where its bins start'), child(field, 'min'));
    const max = readNumber(s, need(s, m.max, child(field, 'max'), 'required for a histogram: where its bins end'), child(field, 'max'));
    if (!(max > min)) fail(s, child(field, 'max'), `must be above min ${min}, got ${max}`, m.max);
    bins = { min, max, count };
  } else {
    for (const key of ['bins', 'min', 'max'] as const) {
      if (m[key]) fail(s, child(field, key), `only a histogram has bins (this drift monitor's stat is ${stat})`, m[key]);
    }
  }
  const thresholdField = child(field, 'threshold');
  const threshold = m.threshold
    ? readNumber(s, m.threshold, thresholdField, 0)
    : stat === 'histogram' ? DEFAULT_PSI_THRESHOLD
      : fail(s, thresholdField, stat === 'mean'
        ? 'required: how far the mean may move, in reference standard deviations (e.g. 0.5)'
        : 'required: how far the standard deviation may change, as a fraction of the reference (e.g. 0.5)');
  const kind = m.reference ? readEnum(s, m.reference, child(field, 'reference'), REFERENCES) : m.file ? 'file' : 'window';
  let reference: DriftReference = { kind: 'window' };
  if (kind === 'file') {
    const ff = child(field, 'file');
    const fileNode = need(s, m.file, ff, 'required with reference: file: the JSON file `ensemble monitor reference` writes, relative to this manifest');
    const file = path.resolve(dir, readString(s, fileNode, ff));
    const stats = s.readReferences === false ? { items: 0, values: 0, mean: 0, std: 0 } : readReferenceFile(s, ff, fileNode, file, spec.name, bins);
    reference = { kind: 'file', file, stats };
  } else if (m.file) {
    fail(s, child(field, 'file'), 'a file is the reference only with reference: file (this monitor\'s reference is its first window of items)', m.file);
  }
  const out: DriftMonitor = { rule: 'drift', action: 'record', stat, window, threshold, reference };
  if (bins) out.bins = bins;
  return out;
}

/** `observers:` — module paths relative to the manifest, or `{ module, options }`. */
export function readObservers(s: Scope, node: YNode, dir: string, isFile: (p: string) => boolean): ObserverSpec[] {
  return readList(s, node, 'observers').map((item, i) => {
    const f = `observers[${i}]`;
    let moduleNode = item;
    let options: Record<string, unknown> = {};
    if (item.kind === 'map') {
      const m = readMap(s, item, f, ['module', 'options']);
      moduleNode = need(s, m.module, child(f, 'module'), 'required: path of the observer module, relative to this file');
      if (m.options) {
        if (m.options.kind !== 'map') fail(s, child(f, 'options'), 'expected a mapping', m.options);
        options = toPlain(m.options) as Record<string, unknown>;
      }
    }
    const mf = item.kind === 'map' ? child(f, 'module') : f;
    const module = path.resolve(dir, readString(s, moduleNode, mf));
    if (!isFile(module)) fail(s, mf, `file not found: ${module}`, moduleNode);
    return { module, options };
  });
}
