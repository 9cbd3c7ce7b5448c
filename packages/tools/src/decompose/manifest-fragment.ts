/**
 * The manifest side of a cut: the `stages:` entries that wire the stage
 * models (docs/manifest.md), and a complete pipeline around them so a cut can
 * be loaded, served and verified as is. ONNX tensor names stay the model-side
 * keys; the whole model's inputs and outputs keep their names on the
 * pipeline side, and the tensors between stages are sanitized (paddle2onnx
 * names such as `conv2d_195.tmp_0` become `conv2d_195_tmp_0`).
 */
import { Document, isMap, isScalar, isSeq, visit } from 'yaml';
import { EnsembleError } from '@ensemble/core/errors.js';
import { datatypeFromOnnx, onnxDataTypeName } from '../onnx/proto.js';
import { PIPELINE_NAME } from '@ensemble/core/manifest/schema.js';
import type { CutResult, GraphTensor } from './types.js';

/** YAML as a person would write it: shapes, tensor specs and the inputs/outputs maps on one line. */
function toYaml(value: unknown): string {
  const doc = new Document(value);
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
    Pair(_, pair) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if ((key === 'inputs' || key === 'outputs') && isMap(pair.value)) pair.value.flow = true;
      if ((key === 'inputs' || key === 'outputs') && isSeq(pair.value)) {
        for (const item of pair.value.items) if (isMap(item)) item.flow = true;
      }
    },
  });
  // docs/manifest.md's style: `{ a: b }` but `[-1, 4]`.
  return doc.toString({ lineWidth: 0 }).replace(/\[ ([-\d, ]*) \]/g, '[$1]');
}

export interface FragmentOptions {
  /** Object keys are `<keyPrefix>/<stage>.onnx`. */
  keyPrefix: string;
  /** Sources are `<sourceDir>/<stage>.onnx`, relative to the YAML file ('' for the same folder). */
  sourceDir: string;
  /** Pipeline tensor names for some ONNX tensors (e.g. the model input `x` -> `rec_input`). */
  rename?: Record<string, string>;
  /** Every stage's batch block (default: none, the manifest's defaults). */
  batch?: { max_size: number; max_delay_ms: number };
  /** Every stage's scale block (default: none, the manifest's defaults). */
  scale?: { instances: number };
}

export interface StageEntry {
  name: string;
  kind: 'onnx';
  weights: { key: string; sha256: string; source: string };
  inputs: Record<string, string>;
  outputs: Record<string, string>;
  batch?: { max_size: number; max_delay_ms: number };
  scale?: { instances: number };
}

/**
 * A pipeline tensor name for each ONNX tensor of the cut, never two alike:
 * the whole model's inputs and outputs keep their own names (`input:0`,
 * `x.1`: what its clients send and read, as the uncut pipeline has them),
 * the tensors between stages are sanitized to letters, digits, '_' and '-'.
 */
export function tensorNames(cut: CutResult, rename: Record<string, string> = {}): Map<string, string> {
  const all: string[] = [];
  const add = (t: string): void => { if (!all.includes(t)) all.push(t); };
  for (const v of cut.inputs) add(v.name);
  for (const s of cut.stages) { for (const i of s.inputs) add(i.name); for (const o of s.outputs) add(o); }
  const names = new Map<string, string>();
  const taken = new Set<string>(Object.values(rename));
  for (const v of [...cut.inputs, ...cut.outputs]) {
    if (rename[v.name] || names.has(v.name) || taken.has(v.name)) continue;
    names.set(v.name, v.name);
    taken.add(v.name);
  }
  for (const t of all) {
    if (names.has(t)) continue;
    if (rename[t]) { names.set(t, rename[t]); continue; }
    const base = t.replace(/[^A-Za-z0-9_-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'tensor';
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    names.set(t, name);
  }
  return names;
}

export function stageEntries(cut: CutResult, opts: FragmentOptions): StageEntry[] {
  const names = tensorNames(cut, opts.rename);
  const file = (stage: string): string => (opts.sourceDir ? `${opts.sourceDir.replace(/\/+$/, '')}/${stage}.onnx` : `${stage}.onnx`);
  return cut.stages.map((s) => ({
    name: s.name,
    kind: 'onnx',
    weights: { key: `${opts.keyPrefix}/${s.name}.onnx`, sha256: s.sha256, source: file(s.name) },
    inputs: Object.fromEntries(s.inputs.map((i) => [i.name, names.get(i.name)!])),
    outputs: Object.fromEntries(s.outputs.map((o) => [o, names.get(o)!])),
    ...(opts.batch ? { batch: { ...opts.batch } } : {}),
    ...(opts.scale ? { scale: { ...opts.scale } } : {}),
  }));
}

/** Just the `stages:` block, to paste into a pipeline of your own. */
export function fragmentYaml(cut: CutResult, opts: FragmentOptions): string {
  return toYaml({ stages: stageEntries(cut, opts) });
}

/** A pipeline tensor spec from a graph input/output: dim 0 is the item dim, symbolic dims are -1. */
function tensorSpec(v: GraphTensor, name: string): { name: string; datatype: string; shape: number[] } {
  const datatype = datatypeFromOnnx(v.elemType);
  if (!datatype) throw new EnsembleError(`'${v.name}' has element type ${onnxDataTypeName(v.elemType)}, which the pipeline cannot carry`, 'invalid_input');
  if (!v.shape || v.shape.length === 0) throw new EnsembleError(`'${v.name}' has no batch dim (its shape is ${v.shape ? 'a scalar' : 'unknown'})`, 'invalid_input');
  return { name, datatype, shape: v.shape.map((d, axis) => (axis === 0 || typeof d !== 'number' ? -1 : d)) };
}

/**
 * A pipeline output with free dims beyond dim 0 must say how items join. The rows of one request
 * go through the cut model as one batch, so they share those dims and nothing is padded.
 */
function outputSpec(spec: { name: string; datatype: string; shape: number[] }): object {
  return spec.shape.slice(1).includes(-1) ? { ...spec, ragged: { pad_value: 0 } } : spec;
}

export interface PipelineOptions extends FragmentOptions {
  /** Pipeline name: lowercase letters, digits, '-' and '_'. */
  name: string;
  description?: string;
  /** A comment at the top of the file. */
  header?: string;
}

/** A complete pipeline.yaml: the whole model's inputs and outputs, and the stages between them. */
export function pipelineYaml(cut: CutResult, opts: PipelineOptions): string {
  if (!PIPELINE_NAME.test(opts.name)) {
    throw new EnsembleError(`'${opts.name}' is not a valid pipeline name: use lowercase letters, digits, '-' and '_'`, 'usage');
  }
  const names = tensorNames(cut, opts.rename);
  const doc = {
    name: opts.name,
    version: '1',
    ...(opts.description ? { description: opts.description } : {}),
    inputs: cut.inputs.map((v) => tensorSpec(v, names.get(v.name)!)),
    outputs: cut.outputs.map((v) => outputSpec(tensorSpec(v, names.get(v.name)!))),
    stages: stageEntries(cut, opts),
  };
  const header = opts.header ? `${opts.header.split('\n').map((l) => `# ${l}`.trimEnd()).join('\n')}\n` : '';
  return header + toYaml(doc);
}

/** A valid pipeline name from any label ('PP-OCRv4 rec' -> 'pp-ocrv4_rec'). */
export function pipelineName(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/^[^a-z0-9]+/, '') || 'cut';
}
