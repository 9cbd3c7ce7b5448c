import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { DATATYPES, type Datatype } from '../tensor/types.js';
import {
  DEFAULT_BATCH, DEFAULT_GRAPH_OPTIMIZATION, DEFAULT_MAX_ITEMS, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RUN_BYTES, DEFAULT_SCALE,
  DEFAULT_TIMEOUT_MS, DEFAULT_VERSION, LAMBDA_MEMORY_MB,
} from './defaults.js';
import {
  child, fail, need, readBool, readEnum, readInt, readList, readMap, readNumber, readString, type Scope,
} from './fields.js';
import { DEFAULTS, PIPELINE, stageWhere, type Locator } from './locator.js';
import { didYouMean } from './suggest.js';
import { toPlain, type YNode } from './parse.js';
import { readMonitors, readObservers } from './monitors.js';
import type {
  JobsSpec,
  BatchSpec, FunctionStage, Manifest, OnnxStage, ScaleSpec, StageSpec, TensorSpec,
} from './types.js';
import { FUNCTION_PLACEMENTS } from './types.js';

/** The manifest as the YAML states it: defaults filled, paths absolute, no DAG yet. */
export type StaticManifest = Omit<Manifest, 'order' | 'levels' | 'lineage' | 'tensors'>;

/** A function stage output written with its type: `{ name, datatype, shape }`. */
export interface TypedOutput {
  stage: string;
  local: string;
  spec: TensorSpec;
}

export interface SchemaResult {
  manifest: StaticManifest;
  typedOutputs: TypedOutput[];
}

export const PIPELINE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
export const STAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const SHA256 = /^[0-9a-f]{64}$/i;
const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;

const TOP_KEYS = ['name', 'version', 'description', 'max_request_bytes', 'max_items', 'max_run_bytes', 'inputs', 'outputs', 'defaults', 'jobs', 'stages', 'observers'] as const;
const JOBS_KEYS = ['max_receives', 'batch_size', 'max_concurrency'] as const;
const DEFAULTS_KEYS = ['batch', 'scale', 'timeout_ms'] as const;
const TENSOR_KEYS = ['name', 'datatype', 'shape', 'description'] as const;
const INPUT_KEYS = [...TENSOR_KEYS, 'batch_axis', 'per_request', 'monitors'] as const;
const OUTPUT_KEYS = [...TENSOR_KEYS, 'batch_axis', 'ragged', 'row_index', 'labels', 'labels_file', 'monitors'] as const;
const RAGGED_KEYS = ['pad_value', 'lengths'] as const;
const BATCH_KEYS = ['max_size', 'max_delay_ms', 'max_queue', 'queue_timeout_ms', 'pad_axis', 'pad_value'] as const;
const SCALE_KEYS = ['instances', 'threads', 'memory_mb', 'reserved_concurrency', 'provisioned_concurrency', 'isolation', 'share'] as const;
const ISOLATIONS = ['process', 'inline'] as const;
const COMMON_STAGE_KEYS = ['name', 'kind', 'inputs', 'outputs', 'batch', 'scale', 'timeout_ms', 'options', 'when', 'otherwise'] as const;
const ONNX_KEYS = [...COMMON_STAGE_KEYS, 'weights', 'session'] as const;
const FUNCTION_KEYS = [...COMMON_STAGE_KEYS, 'module', 'fanout', 'placement'] as const;

export interface ManifestReadOptions {
  /** False: drift reference files are not read (`ensemble monitor reference` is about to write them). */
  readReferences?: boolean;
}

/** Validates the parsed YAML of `file` and fills every default. */
export function readManifest(root: YNode, file: string, loc: Locator, opts: ManifestReadOptions = {}): SchemaResult {
  const dir = path.dirname(file);
  const s: Scope = { loc, where: PIPELINE, readReferences: opts.readReferences };
  const top = readMap(s, root, '', TOP_KEYS);

  const name = readString(s, need(s, top.name, 'name'), 'name');
  if (!PIPELINE_NAME.test(name)) {
    fail(s, 'name', `'${name}' is not a valid pipeline name: use lowercase letters, digits, '-' and '_', starting with a letter or digit (it appears in URLs)`);
  }
  const version = top.version ? readString(s, top.version, 'version', { numbers: true }) : DEFAULT_VERSION;
  const description = top.description ? readString(s, top.description, 'description') : undefined;
  const maxRequestBytes = top.max_request_bytes
    ? readInt(s, top.max_request_bytes, 'max_request_bytes', 1)
    : DEFAULT_MAX_REQUEST_BYTES;
  const maxItems = top.max_items ? readInt(s, top.max_items, 'max_items', 1) : DEFAULT_MAX_ITEMS;
  const maxRunBytes = top.max_run_bytes ? readInt(s, top.max_run_bytes, 'max_run_bytes', 1) : DEFAULT_MAX_RUN_BYTES;

  const inputs = readTensorList(s, need(s, top.inputs, 'inputs', 'required: the pipeline needs at least one input'), 'inputs', 'input', dir);
  const outputs = withCompanions(s, readTensorList(s, need(s, top.outputs, 'outputs', 'required: the pipeline needs at least one output'), 'outputs', 'output', dir));
  if (inputs.every((i) => i.perRequest)) {
    fail(s, 'inputs', 'every input is per_request: at least one input must carry the items (a request\'s rows)', top.inputs);
  }

  const defaults = readDefaults({ loc, where: DEFAULTS }, top.defaults);

  const stageNodes = readList(s, need(s, top.stages, 'stages', 'required: the pipeline needs at least one stage'), 'stages');
  if (stageNodes.length === 0) fail(s, 'stages', 'the pipeline needs at least one stage');
  const stages: StageSpec[] = [];
  const typedOutputs: TypedOutput[] = [];
  const seen = new Map<string, number>();
  stageNodes.forEach((node, i) => {
    const { stage, typed } = readStage(loc, node, i, dir, defaults);
    const first = seen.get(stage.name);
    if (first !== undefined) {
      fail({ loc, where: stageWhere(stage.name) }, 'name', `stage name '${stage.name}' is used twice (stages[${first}] and stages[${i}])`);
    }
    seen.set(stage.name, i);
    stages.push(stage);
    typedOutputs.push(...typed);
  });

  const manifest: StaticManifest = { name, version, file, dir, inputs, outputs, stages, maxRequestBytes, maxItems, maxRunBytes };
  if (description !== undefined) manifest.description = description;
  if (top.jobs) manifest.jobs = readJobs(s, top.jobs);
  if (top.observers) {
    const list = readObservers(s, top.observers, dir, isFile);
    if (list.length) manifest.observers = list;
  }
  return { manifest, typedOutputs };
}

/** `jobs:` bounds are SQS's and Lambda's own: maxReceiveCount 1..1000, batch size 1..10 without a batching window, maximum concurrency 2..1000. */
function readJobs(s: Scope, node: YNode): JobsSpec {
  const m = readMap(s, node, 'jobs', JOBS_KEYS);
  const jobs: JobsSpec = {};
  if (m.max_receives) jobs.maxReceives = readInt(s, m.max_receives, 'jobs.max_receives', 1, 1000);
  if (m.batch_size) jobs.batchSize = readInt(s, m.batch_size, 'jobs.batch_size', 1, 10);
  if (m.max_concurrency) jobs.maxConcurrency = readInt(s, m.max_concurrency, 'jobs.max_concurrency', 2, 1000);
  return jobs;
}

interface Defaults {
  batch: Partial<BatchSpec>;
  scale: Partial<ScaleSpec>;
  timeoutMs?: number;
}

function readDefaults(s: Scope, node: YNode | undefined): Defaults {
  if (!node) return { batch: {}, scale: {} };
  const m = readMap(s, node, '', DEFAULTS_KEYS);
  return {
    batch: m.batch ? readBatch(s, m.batch, 'batch') : {},
    scale: m.scale ? readScale(s, m.scale, 'scale') : {},
    timeoutMs: m.timeout_ms ? readNumber(s, m.timeout_ms, 'timeout_ms', 1) : undefined,
  };
}

type TensorRole = 'input' | 'output' | 'typed';

function readTensorList(s: Scope, node: YNode, field: string, role: TensorRole, dir = ''): TensorSpec[] {
  const items = readList(s, node, field);
  if (items.length === 0) fail(s, field, 'needs at least one tensor', node);
  const specs: TensorSpec[] = [];
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const spec = readTensorSpec(s, item, `${field}[${i}]`, role, dir);
    if (seen.has(spec.name)) fail(s, `${field}[${i}].name`, `tensor '${spec.name}' is listed twice`);
    seen.add(spec.name);
    specs.push(spec);
  });
  return specs;
}

/**
 * `{ name, datatype, shape }` where the batch axis (dim 0 unless `batch_axis`
 * says otherwise) is the item dimension, always -1; a `per_request` input has
 * its real shape and no item dimension.
 */
function readTensorSpec(s: Scope, node: YNode, field: string, role: TensorRole = 'typed', dir = ''): TensorSpec {
  const isOutput = role === 'output';
  const m = readMap(s, node, field, role === 'input' ? INPUT_KEYS : isOutput ? OUTPUT_KEYS : TENSOR_KEYS);
  const name = readString(s, need(s, m.name, child(field, 'name')), child(field, 'name'));
  const datatype = readEnum<Datatype>(s, need(s, m.datatype, child(field, 'datatype')), child(field, 'datatype'), DATATYPES);
  const shapeField = child(field, 'shape');
  const dims = readList(s, need(s, m.shape, shapeField), shapeField);
  const perRequest = m.per_request ? readBool(s, m.per_request, child(field, 'per_request')) : false;
  if (dims.length === 0 && !perRequest) {
    fail(s, shapeField, `tensor '${name}': shape needs at least the item dimension: [-1, ...] (a value that is one per request, not per item, is declared with per_request: true)`, m.shape);
  }
  const shape = dims.map((d, i) => {
    const v = readInt(s, d, `${shapeField}[${i}]`, -1);
    if (v === 0) fail(s, `${shapeField}[${i}]`, 'dimensions are -1 (free) or >= 1', d);
    return v;
  });
  let axis = 0;
  if (m.batch_axis) {
    const af = child(field, 'batch_axis');
    if (perRequest) fail(s, af, `tensor '${name}' is per_request: it has no items, so no batch axis`, m.batch_axis);
    axis = readInt(s, m.batch_axis, af, 0);
    if (axis >= shape.length) fail(s, af, `tensor '${name}': batch axis ${axis} is not an axis of its shape ${JSON.stringify(shape)}`, m.batch_axis);
  }
  if (!perRequest && shape[axis] !== -1) {
    const which = axis === 0 ? 'dim 0' : `dim ${axis} (its batch_axis)`;
    fail(s, `${shapeField}[${axis}]`, `tensor '${name}': ${which} must be -1 (it is the item/batch dimension), got ${shape[axis]}`, dims[axis]);
  }
  const spec: TensorSpec = { name, datatype, shape };
  if (axis !== 0) spec.batchAxis = axis;
  if (perRequest) spec.perRequest = true;
  if (m.description) spec.description = readString(s, m.description, child(field, 'description'));
  // After every field the rules are checked against (ragged included).
  const withMonitors = (): TensorSpec => {
    if (m.monitors) {
      const list = readMonitors(s, m.monitors, isOutput ? 'output' : 'input', spec, dir);
      if (list.length) spec.monitors = list;
    }
    return spec;
  };
  if (!isOutput) return withMonitors();
  const free = shape.some((d, i) => d === -1 && i !== axis);
  if (m.ragged) {
    const rf = child(field, 'ragged');
    const r = readMap(s, m.ragged, rf, RAGGED_KEYS);
    if (!free) fail(s, rf, `tensor '${name}' has no free dimension beyond its item dim ${JSON.stringify(shape)}: its items always stack, ragged does not apply`, m.ragged);
    spec.ragged = { padValue: r.pad_value ? readNumber(s, r.pad_value, child(rf, 'pad_value')) : 0 };
    if (r.lengths) spec.ragged.lengths = readString(s, r.lengths, child(rf, 'lengths'));
  } else if (free) {
    // Fan-out items (text lines of different widths) and rows alike may differ there; stacking them would fail
    // only after all the work ran.
    fail(s, shapeField, `tensor '${name}' has a free dimension beyond its item dim ${JSON.stringify(shape)}: items can differ in shape there `
      + `and cannot be stacked into one response tensor. Give those dimensions fixed sizes, or declare how items are joined: `
      + `ragged: { pad_value: 0, lengths: ${name}_shape }`, m.shape);
  }
  if (m.row_index) spec.rowIndex = readString(s, m.row_index, child(field, 'row_index'));
  readLabels(s, m, field, spec, dir);
  return withMonitors();
}

/**
 * An output's class names for the classification extension: `labels: [...]`
 * or `labels_file: labels.txt` (relative to the manifest, one label per line,
 * trailing blank lines ignored). Only for numeric outputs; with a fixed class
 * count (every dim but the item dim fixed) there must be one label per class.
 */
function readLabels(s: Scope, m: Record<string, YNode | undefined>, field: string, spec: TensorSpec, dir: string): void {
  if (!m.labels && !m.labels_file) return;
  const which = m.labels ? 'labels' : 'labels_file';
  const lf = child(field, which);
  if (m.labels && m.labels_file) fail(s, lf, `tensor '${spec.name}': give labels inline or in labels_file, not both`, m.labels);
  if (spec.datatype === 'BYTES' || spec.datatype === 'BOOL') {
    fail(s, lf, `tensor '${spec.name}' is ${spec.datatype}: labels name the classes of a numeric output`, m[which]);
  }
  let labels: string[];
  if (m.labels) {
    labels = readList(s, m.labels, lf).map((n, i) => readString(s, n, `${lf}[${i}]`, { numbers: true }));
  } else {
    const file = path.resolve(dir, readString(s, m.labels_file!, lf));
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return fail(s, lf, `cannot read the labels file ${file}: ${(err as Error).message}`, m.labels_file);
    }
    labels = text.split(/\r?\n/);
    while (labels.length && labels[labels.length - 1].trim() === '') labels.pop();
    spec.labelsFile = file;
  }
  if (labels.length === 0) fail(s, lf, `tensor '${spec.name}': the labels list is empty`, m[which]);
  const axis = spec.batchAxis ?? 0;
  const rest = spec.shape.filter((_, i) => i !== axis);
  if (rest.every((d) => d > 0)) {
    const classes = rest.reduce((a, b) => a * b, 1);
    if (labels.length !== classes) {
      fail(s, lf, `tensor '${spec.name}' has ${classes} classes per item (shape ${JSON.stringify(spec.shape)}) but ${labels.length} labels`, m[which]);
    }
  }
  spec.labels = labels;
}

/** Pipeline outputs plus the companions their `ragged.lengths` and `row_index` name, right after each. */
function withCompanions(s: Scope, outputs: TensorSpec[]): TensorSpec[] {
  const all: TensorSpec[] = [];
  const names = new Set(outputs.map((o) => o.name));
  const add = (spec: TensorSpec, field: string) => {
    if (names.has(spec.name)) fail(s, field, `output '${spec.name}' already exists; the companion of '${spec.derived!.of}' needs a name of its own`);
    names.add(spec.name);
    all.push(spec);
  };
  outputs.forEach((o, i) => {
    all.push(o);
    if (o.ragged?.lengths) {
      add({
        name: o.ragged.lengths, datatype: 'INT64', shape: [-1, o.shape.length - 1], derived: { kind: 'lengths', of: o.name },
        description: `The shape of each row of '${o.name}' before padding.`,
      }, `outputs[${i}].ragged.lengths`);
    }
    if (o.rowIndex) {
      add({
        name: o.rowIndex, datatype: 'INT64', shape: [-1], derived: { kind: 'row_index', of: o.name },
        description: `For each row of '${o.name}', the request row it came from.`,
      }, `outputs[${i}].row_index`);
    }
  });
  return all;
}

function readStage(
  loc: Locator, node: YNode, index: number, dir: string, defaults: Defaults,
): { stage: StageSpec; typed: TypedOutput[] } {
  // Name the stage in errors as soon as we can tell its name.
  const nameNode = node.kind === 'map' ? node.entries.get('name')?.value : undefined;
  const hasName = nameNode?.kind === 'scalar' && typeof nameNode.value === 'string' && nameNode.value !== '';
  const s: Scope = { loc, where: hasName ? stageWhere(nameNode.value as string) : `stages[${index}]` };
  loc.set(s.where, '', node.line);
  if (node.kind !== 'map') fail(s, '', `a stage is a mapping with name, kind, inputs and outputs, got a ${node.kind === 'seq' ? 'list' : 'value'}`, node);

  let kindNode = node.entries.get('kind')?.value;
  if (kindNode?.kind === 'scalar' && kindNode.value === null) kindNode = undefined;
  // Without a kind, a typo such as `kidn:` is the likelier mistake: report it first.
  if (!kindNode) readMap(s, node, '', [...new Set<string>([...ONNX_KEYS, ...FUNCTION_KEYS])]);
  const kind = readEnum(s, need(s, kindNode, 'kind', 'required: onnx or function'), 'kind', ['onnx', 'function'] as const);
  const hints: Record<string, string> = kind === 'onnx'
    ? { module: 'only function stages take a module (this stage is kind: onnx)', fanout: 'only function stages can fan out (this stage is kind: onnx)', placement: 'only function stages take a placement (an onnx stage is always its own function on Lambda)' }
    : { weights: 'only onnx stages take weights (this stage is kind: function)', session: 'only onnx stages take session options (this stage is kind: function)' };
  const m = readMap(s, node, '', kind === 'onnx' ? ONNX_KEYS : FUNCTION_KEYS, hints);

  const name = readString(s, need(s, m.name, 'name'), 'name');
  if (!STAGE_NAME.test(name)) fail(s, 'name', `'${name}' is not a valid stage name: use letters, digits, '-' and '_'`);

  const inputs = readStageIo(s, need(s, m.inputs, 'inputs', 'required: the tensors this stage reads'), 'inputs', false);
  const outputs = readStageIo(s, need(s, m.outputs, 'outputs', 'required: the tensors this stage writes'), 'outputs', kind === 'function');

  const own = m.batch ? readBatch(s, m.batch, 'batch') : {};
  const batch: BatchSpec = { ...DEFAULT_BATCH, ...defaults.batch, ...own };
  // A max_queue someone wrote is a bound they chose; without one the queue follows the stage's measured rate.
  batch.queueFromServiceRate = own.maxQueue === undefined && defaults.batch.maxQueue === undefined;
  const scale: ScaleSpec = { ...DEFAULT_SCALE, ...defaults.scale, ...(m.scale ? readScale(s, m.scale, 'scale') : {}) };
  if (scale.reservedConcurrency !== undefined && scale.provisionedConcurrency !== undefined
      && scale.provisionedConcurrency > scale.reservedConcurrency) {
    fail(s, 'scale.provisioned_concurrency', `${scale.provisionedConcurrency} exceeds scale.reserved_concurrency (${scale.reservedConcurrency})`);
  }
  const timeoutMs = m.timeout_ms ? readNumber(s, m.timeout_ms, 'timeout_ms', 1) : defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let options: Record<string, unknown> = {};
  if (m.options) {
    if (m.options.kind !== 'map') fail(s, 'options', 'expected a mapping', m.options);
    options = toPlain(m.options) as Record<string, unknown>;
  }
  const base: Omit<StageSpec, 'kind'> = { name, inputs: inputs.map, outputs: outputs.map, batch, scale, timeoutMs, options };
  if (m.when) {
    const tensor = readString(s, m.when, 'when');
    if (!m.otherwise) fail(s, 'when', `a stage with when: needs otherwise: { <output>: <tensor> } for every output, the tensors items skip to (outputs: ${Object.keys(outputs.map).join(', ')})`, m.when);
    const o = readStageIo(s, m.otherwise, 'otherwise', false).map;
    for (const local of Object.keys(o)) {
      if (!(local in outputs.map)) fail(s, `otherwise.${local}`, `'${local}' is not an output of this stage${didYouMean(local, Object.keys(outputs.map), true)}`);
    }
    for (const local of Object.keys(outputs.map)) {
      if (!(local in o)) fail(s, 'otherwise', `output '${local}' has no tensor for the items the condition skips: add ${local}: <tensor>`, m.otherwise);
    }
    base.when = { tensor, otherwise: o };
  } else if (m.otherwise) {
    fail(s, 'otherwise', 'otherwise: only goes with when: (the condition that skips items)', m.otherwise);
  }
  const typed = outputs.typed.map(({ local, spec }) => ({ stage: name, local, spec }));

  if (kind === 'onnx') {
    const stage: OnnxStage = {
      ...base,
      kind,
      weights: readWeights(s, need(s, m.weights, 'weights', 'required: { key, sha256 } of the ONNX model'), dir),
      session: { graphOptimization: DEFAULT_GRAPH_OPTIMIZATION },
    };
    if (m.session) {
      const sm = readMap(s, m.session, 'session', ['graph_optimization']);
      if (sm.graph_optimization) {
        stage.session.graphOptimization = readEnum(s, sm.graph_optimization, 'session.graph_optimization', GRAPH_OPTIMIZATIONS);
      }
    }
    return { stage, typed };
  }
  const moduleNode = need(s, m.module, 'module', 'required: path of the TypeScript module, relative to this file');
  const module = path.resolve(dir, readString(s, moduleNode, 'module'));
  if (!isFile(module)) fail(s, 'module', `file not found: ${module}`, moduleNode);
  const stage: FunctionStage = {
    ...base,
    kind,
    module,
    fanout: m.fanout ? readBool(s, m.fanout, 'fanout') : false,
  };
  if (m.placement) stage.placement = readEnum(s, m.placement, 'placement', FUNCTION_PLACEMENTS);
  return { stage, typed };
}

/**
 * Stage inputs/outputs: a list of tensor names (local name = tensor name) or a
 * map { local: tensor }. Function outputs may be typed `{ name, datatype, shape }`.
 */
function readStageIo(
  s: Scope, node: YNode, field: string, typedAllowed: boolean,
): { map: Record<string, string>; typed: { local: string; spec: TensorSpec }[] } {
  const map: Record<string, string> = {};
  const typed: { local: string; spec: TensorSpec }[] = [];
  const entry = (local: string, value: YNode, f: string): void => {
    if (value.kind === 'map' && typedAllowed) {
      const spec = readTensorSpec(s, value, f);
      typed.push({ local, spec });
      map[local] = spec.name;
      return;
    }
    if (value.kind !== 'scalar' || typeof value.value !== 'string' || value.value === '') {
      fail(s, f, `expected a tensor name${typedAllowed ? ' or { name, datatype, shape }' : ''}`, value);
    }
    map[local] = value.value;
  };
  if (node.kind === 'seq') {
    readList(s, node, field).forEach((item, i) => {
      const local = item.kind === 'map' ? item.entries.get('name')?.value : item;
      const localName = local?.kind === 'scalar' && typeof local.value === 'string' ? local.value : undefined;
      if (localName !== undefined && localName in map) fail(s, `${field}[${i}]`, `tensor '${localName}' is listed twice`, item);
      const f = localName !== undefined ? `${field}.${localName}` : `${field}[${i}]`;
      s.loc.set(s.where, f, item.line);
      entry(localName ?? '', item, f);
    });
  } else if (node.kind === 'map') {
    s.loc.set(s.where, field, node.line);
    for (const [local, { keyLine, value }] of node.entries) {
      s.loc.set(s.where, `${field}.${local}`, keyLine);
      entry(local, value, `${field}.${local}`);
    }
  } else {
    fail(s, field, 'expected a list of tensor names or a mapping { local name: tensor }', node);
  }
  if (Object.keys(map).length === 0) fail(s, field, 'needs at least one tensor', node);
  return { map, typed };
}

function readWeights(s: Scope, node: YNode, dir: string): OnnxStage['weights'] {
  const m = readMap(s, node, 'weights', ['key', 'sha256', 'source']);
  const key = readString(s, need(s, m.key, 'weights.key', 'required: object key in the weights bucket'), 'weights.key');
  const shaNode = need(s, m.sha256, 'weights.sha256', 'required: 64 hex characters');
  const sha256 = readString(s, shaNode, 'weights.sha256', { numbers: true });
  if (!SHA256.test(sha256)) fail(s, 'weights.sha256', `expected 64 hex characters, got '${sha256}'`, shaNode);
  const weights: OnnxStage['weights'] = { key, sha256: sha256.toLowerCase() };
  if (m.source) weights.source = path.resolve(dir, readString(s, m.source, 'weights.source'));
  return weights;
}

function readBatch(s: Scope, node: YNode, field: string): Partial<BatchSpec> {
  const m = readMap(s, node, field, BATCH_KEYS);
  const b: Partial<BatchSpec> = {};
  if (m.max_size) b.maxSize = readInt(s, m.max_size, `${field}.max_size`, 1);
  if (m.max_delay_ms) b.maxDelayMs = readNumber(s, m.max_delay_ms, `${field}.max_delay_ms`, 0);
  if (m.max_queue) b.maxQueue = readInt(s, m.max_queue, `${field}.max_queue`, 1);
  if (m.queue_timeout_ms) b.queueTimeoutMs = readNumber(s, m.queue_timeout_ms, `${field}.queue_timeout_ms`, 1);
  if (m.pad_axis) b.padAxis = readInt(s, m.pad_axis, `${field}.pad_axis`, 0);
  if (m.pad_value) b.padValue = readNumber(s, m.pad_value, `${field}.pad_value`);
  return b;
}

function readScale(s: Scope, node: YNode, field: string): Partial<ScaleSpec> {
  const m = readMap(s, node, field, SCALE_KEYS);
  const c: Partial<ScaleSpec> = {};
  if (m.instances) c.instances = readInt(s, m.instances, `${field}.instances`, 1);
  if (m.threads) {
    // A number given after `threads: auto` in defaults replaces it: autoThreads is set either way.
    const auto = m.threads.kind === 'scalar' && m.threads.value === 'auto';
    if (!auto && m.threads.kind === 'scalar' && typeof m.threads.value === 'string') {
      fail(s, `${field}.threads`, `expected an integer >= 1 or auto, got '${m.threads.value}'`, m.threads);
    }
    c.threads = auto ? availableParallelism() : readInt(s, m.threads, `${field}.threads`, 1);
    c.autoThreads = auto ? true : undefined;
  }
  if (m.memory_mb) c.memoryMb = readInt(s, m.memory_mb, `${field}.memory_mb`, LAMBDA_MEMORY_MB.min, LAMBDA_MEMORY_MB.max);
  if (m.reserved_concurrency) c.reservedConcurrency = readInt(s, m.reserved_concurrency, `${field}.reserved_concurrency`, 0);
  if (m.provisioned_concurrency) c.provisionedConcurrency = readInt(s, m.provisioned_concurrency, `${field}.provisioned_concurrency`, 0);
  if (m.isolation) c.isolation = readEnum(s, m.isolation, `${field}.isolation`, ISOLATIONS);
  if (m.share) c.share = readBool(s, m.share, `${field}.share`);
  return c;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
