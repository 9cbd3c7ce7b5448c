import type { DriftMonitor, Manifest, MonitorSpec, TensorSpec } from '../manifest/types.js';
import type { Tensor } from '../tensor/types.js';
import type { Finding } from '../storage/types.js';
import { BadRequestError, OutputRejectedError } from '../errors.js';
import { valuesOf } from './values.js';
import { summarize, type ValueSummary } from './summary.js';
import { checkFinite, checkRange, checkShape, type RuleResult } from './rules.js';
import { DriftWindow } from './drift.js';

/** The monitors of one tensor, with its drift windows. */
interface Watched {
  spec: TensorSpec;
  rules: MonitorSpec[];
  /** Whether any rule reads the values' summary (range, finite): the summary pass is then made once for all. */
  summary: boolean;
  drifts: DriftWindow[];
}

/**
 * The monitors of one loaded pipeline version: the manifest's rules per input
 * and output, and the drift state they keep between requests. A pipeline
 * with no monitors has none of this (`createMonitors` returns undefined), so
 * its requests pay nothing.
 */
export class PipelineMonitors {
  private readonly inputs: Watched[];
  private readonly outputs: Watched[];

  constructor(manifest: Manifest) {
    this.inputs = watched(manifest.inputs);
    this.outputs = watched(manifest.outputs);
  }

  /**
   * Check a request's inputs (already validated against the manifest), adding
   * what is found to `findings`. A reject finding throws a 400 naming the
   * tensor and the rule; a rejected request's values stay out of the drift
   * windows (it is not traffic that was served).
   */
  checkInputs(tensors: Record<string, Tensor>, findings: Finding[]): void {
    const rejected = check(this.inputs, tensors, findings);
    if (rejected) throw new BadRequestError(`input '${rejected.tensor}' rejected by its ${rejected.rule} monitor: ${rejected.message}`);
    drift(this.inputs, tensors, findings);
  }

  /** The same for the outputs a request computed; a reject is a 422 (the request was valid, its output is not served). */
  checkOutputs(tensors: Record<string, Tensor | undefined>, findings: Finding[]): void {
    const rejected = check(this.outputs, tensors, findings);
    if (rejected) throw new OutputRejectedError(`output '${rejected.tensor}' rejected by its ${rejected.rule} monitor: ${rejected.message}`);
    drift(this.outputs, tensors, findings);
  }
}

/** Monitors for `manifest`, or undefined when it declares none. */
export function createMonitors(manifest: Manifest): PipelineMonitors | undefined {
  const any = (list: TensorSpec[]) => list.some((t) => t.monitors?.length);
  return any(manifest.inputs) || any(manifest.outputs) ? new PipelineMonitors(manifest) : undefined;
}

function watched(specs: TensorSpec[]): Watched[] {
  return specs.filter((s) => s.monitors?.length).map((spec) => {
    const rules = spec.monitors!.filter((m) => m.rule !== 'drift');
    return {
      spec,
      rules,
      summary: rules.some((m) => m.rule === 'range' || m.rule === 'finite'),
      drifts: spec.monitors!.filter((m): m is DriftMonitor => m.rule === 'drift').map((m) => new DriftWindow(m)),
    };
  });
}

/** Every request-level rule of every tensor present; the first reject finding, if any. */
function check(list: Watched[], tensors: Record<string, Tensor | undefined>, findings: Finding[]): Finding | undefined {
  let rejected: Finding | undefined;
  for (const w of list) {
    const t = tensors[w.spec.name];
    if (!t) continue;
    let summary: ValueSummary | undefined;
    if (w.summary) {
      const v = valuesOf(t);
      if (v) summary = summarize(v);
    }
    for (const m of w.rules) {
      const r = apply(m, w.spec, t, summary);
      if (!r) continue;
      const f: Finding = { tensor: w.spec.name, rule: m.rule, action: m.action, message: r.message };
      if (r.value !== undefined) f.value = r.value;
      findings.push(f);
      if (m.action === 'reject') rejected ??= f;
    }
  }
  return rejected;
}

function apply(m: MonitorSpec, spec: TensorSpec, t: Tensor, summary: ValueSummary | undefined): RuleResult | undefined {
  switch (m.rule) {
    case 'range': return summary && checkRange(m, summary);
    case 'finite': return summary && checkFinite(m, summary);
    case 'shape': return checkShape(m, spec, t);
    case 'drift': return undefined;
  }
}

/** Feed every drift window the request's items, and note those now past their threshold. */
function drift(list: Watched[], tensors: Record<string, Tensor | undefined>, findings: Finding[]): void {
  for (const w of list) {
    if (!w.drifts.length) continue;
    const t = tensors[w.spec.name];
    const v = t && valuesOf(t);
    if (!t || !v) continue;
    // A per-request input is one item; otherwise dim 0 counts them (load refuses drift on another batch axis).
    const items = w.spec.perRequest ? 1 : t.shape[0];
    const per = items === 0 ? 0 : v.length / items;
    for (const d of w.drifts) {
      d.add(v, items, per);
      const r = d.check();
      if (!r) continue;
      const f: Finding = { tensor: w.spec.name, rule: 'drift', action: 'record', message: `${d.monitor.stat}: ${r.message}` };
      if (r.value !== undefined) f.value = r.value;
      findings.push(f);
    }
  }
}
