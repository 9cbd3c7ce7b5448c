/**
 * From what an ONNX model says about itself to a pipeline that serves it
 * whole: tensor specs, batching defaults that fit the model's batch dim, and
 * a first request built from the input shapes. Pure: the command writes the
 * files.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Datatype } from '@ensemble/core/tensor/types.js';
import type { ModelInfo, ValueInfo } from '../onnx/inspect.js';
import { onnxDataTypeName } from '../onnx/proto.js';

export interface InitPlan {
  name: string;
  yaml: string;
  /** An Open Inference Protocol request body for the model, one item, every free dim 1. */
  example: { inputs: { name: string; datatype: Datatype; shape: number[]; data: unknown[] }[] };
  /** Items per call the model allows: 1 when its batch dim is fixed to 1. */
  maxSize: number;
  notes: string[];
}

export interface InitOptions {
  name: string;
  /** Weights file name in the pipeline folder, and the object key's last part. */
  file: string;
  sha256: string;
  /** The model file the user gave, for the header comment. */
  source: string;
  /**
   * Why the model takes one item per call although its metadata allows more
   * (it failed when run on two): batch.max_size is then 1, with this as its
   * comment.
   */
  oneItem?: string;
}

const DEFAULT_MAX_SIZE = 8;
/**
 * How long the first item of a batch waits for more, in a pipeline init
 * writes: to the end of the event-loop turn, no timer (a delay under 1 ms;
 * docs/manifest.md). A lone request leaves at once, with all its rows (at 0
 * an idle instance would take the first row alone: a request of 8 rows ran
 * as batches of 1, 1 and 6); under load, items queue behind busy instances
 * and leave together. A 2 ms timer bought nothing measurable on a model
 * served whole (docs/benchmarks.md, the fourteenth pass).
 */
export const INIT_MAX_DELAY_MS = 0.1;
/**
 * Worker processes per stage in a pipeline init writes: two, as Triton gives
 * an ONNX Runtime model on CPU by default, so a batch runs while the next
 * one is made and sent. One left a core idle: 33.8-38.9 -> 48.1-56.0
 * requests/s at concurrency 8 on the same recogniser (the fourteenth pass).
 */
export const INIT_INSTANCES = 2;

/** The dim as a manifest writes it: -1 for anything not a fixed size. */
const dim = (d: number | string): number => (typeof d === 'number' && d > 0 ? d : -1);

function describe(v: ValueInfo): string {
  return `${v.datatype ?? `element type ${v.elemType}`} [${v.shape.map((d) => (d === '' ? '?' : d)).join(', ')}]`;
}

/** How a tensor carries its items: one value per request, or items along `axis`. */
export type Layout = { perRequest: true } | { perRequest: false; axis: number };

/**
 * Where each input and output keeps its items. A scalar input is one value
 * per request (a sample rate). A tensor whose dim 0 does not carry the
 * symbolic name the other inputs' dim 0 share ('batch'), but another of its
 * axes does, has its items along that axis (a state [2, batch, 64]).
 */
export function layoutOf(info: ModelInfo): Map<string, Layout> {
  const names = new Set<string>();
  for (const v of info.inputs) if (typeof v.shape[0] === 'string' && v.shape[0] !== '') names.add(v.shape[0]);
  const out = new Map<string, Layout>();
  const inputNames = new Set(info.inputs.map((v) => v.name));
  const others = (v: ValueInfo) => info.outputs.filter((o) => o !== v && o.kind === 'tensor' && !inputNames.has(o.name)).map((o) => o.name);
  const keepOthers = (v: ValueInfo) => (others(v).length ? `; serve the others with --outputs ${others(v).join(',')}` : '');
  const place = (v: ValueInfo, side: 'input' | 'output') => {
    if (v.kind !== 'tensor') {
      throw new EnsembleError(`model ${side} '${v.name}' is ${v.kind === 'unknown' ? 'of no declared type' : `a ${v.kind}`}, not a tensor: the Open Inference Protocol carries tensors only${side === 'output' ? keepOthers(v) : ''}`, 'invalid_input');
    }
    if (!v.datatype) {
      throw new EnsembleError(`model ${side} '${v.name}' has element type ${onnxDataTypeName(v.elemType)}, which the Open Inference Protocol cannot carry${side === 'output' ? keepOthers(v) : ''}`, 'invalid_input');
    }
    if (side === 'output' && inputNames.has(v.name)) {
      throw new EnsembleError(`model output '${v.name}' is its input '${v.name}' passed through: a pipeline tensor has one producer${keepOthers(v)}`, 'invalid_input');
    }
    if (side === 'input' && v.rankKnown && v.shape.length === 0) { out.set(v.name, { perRequest: true }); return; }
    if (!v.rankKnown || v.shape.length === 0) {
      throw new EnsembleError(`model ${side} '${v.name}' (${describe(v)}) has no batch dimension: ensemble init cannot tell how its items are laid out; write the pipeline by hand (docs/manifest.md)`, 'invalid_input');
    }
    const d0 = v.shape[0];
    const named = typeof d0 === 'string' && names.has(d0);
    const other = v.shape.findIndex((d, a) => a > 0 && typeof d === 'string' && names.has(d));
    if (!named && other > 0) { out.set(v.name, { perRequest: false, axis: other }); return; }
    if (typeof d0 === 'number' && d0 > 1) {
      throw new EnsembleError(`model ${side} '${v.name}' has its dim 0 fixed to ${d0} (${describe(v)}): the pipeline cuts requests into items along dim 0, and a call of exactly ${d0} items cannot be guaranteed`, 'invalid_input');
    }
    out.set(v.name, { perRequest: false, axis: 0 });
  };
  for (const v of info.inputs) place(v, 'input');
  for (const v of info.outputs) place(v, 'output');
  return out;
}

/** The inputs whose items' axis is fixed to 1 (the model takes one item per call). */
function fixedToOne(info: ModelInfo, layout: Map<string, Layout>): ValueInfo[] {
  return info.inputs.filter((v) => { const l = layout.get(v.name)!; return !l.perRequest && v.shape[l.axis] === 1; });
}

/**
 * batch.max_size for a model served by init, whole or cut: 1 when its batch
 * dim is fixed to 1 or it failed on two items in one call (`oneItem`), else
 * DEFAULT_MAX_SIZE.
 */
export function initMaxSize(info: ModelInfo, oneItem?: string): number {
  return fixedToOne(info, layoutOf(info)).length || oneItem ? 1 : DEFAULT_MAX_SIZE;
}

/** JSON-quoted YAML scalar: tensor names may hold '.', ':' or '/'. */
const q = (s: string): string => JSON.stringify(s);

export function planInit(info: ModelInfo, opts: InitOptions): InitPlan {
  const layout = layoutOf(info);
  const axisOf = (v: ValueInfo): number => { const l = layout.get(v.name)!; return l.perRequest ? -1 : l.axis; };
  const notes: string[] = [];
  const fixedOne = fixedToOne(info, layout);
  const oneItem = fixedOne.length ? undefined : opts.oneItem;
  const maxSize = initMaxSize(info, opts.oneItem);
  if (fixedOne.length) notes.push(`the model takes one item per call (${fixedOne.map((v) => `'${v.name}' dim 0 is 1`).join(', ')}): batch.max_size is 1`);
  if (oneItem) notes.push(`${oneItem}: batch.max_size is 1`);

  const tensor = (v: ValueInfo, output: boolean): string[] => {
    const axis = axisOf(v);
    const head = [`  - name: ${q(v.name)}`, `    datatype: ${v.datatype}`];
    if (axis < 0) {
      notes.push(`input '${v.name}' is a scalar: one value per request (per_request), given whole to every call`);
      return [...head, `    shape: []   # the model's ${describe(v)}: one value per request, not per item`,
        '    per_request: true   # every item of a request sees it; only items that agree on it share a batch'];
    }
    const shape = v.shape.map((d, a) => (a === axis ? -1 : dim(d)));
    if (axis > 0) {
      notes.push(`${output ? 'output' : 'input'} '${v.name}' has its items along dim ${axis} (${describe(v)}): batch_axis ${axis}`);
      head.push(`    shape: [${shape.join(', ')}]   # the model's ${describe(v)}; dim ${axis} is the item dim`,
        `    batch_axis: ${axis}   # items are cut, batched and joined along this dim, not dim 0`);
    } else {
      head.push(`    shape: [${shape.join(', ')}]   # the model's ${describe(v)}; dim 0 is the item dim`);
    }
    const lines = head;
    if (output && shape.some((d, a) => d === -1 && a !== axis)) {
      lines.push('    # Free dims beyond dim 0 may differ between items: they are padded to the largest in the response,');
      lines.push('    # and <name>_shape says each item\'s real shape.');
      lines.push(`    ragged: { pad_value: 0, lengths: ${q(`${v.name}_shape`)} }`);
      notes.push(`output '${v.name}' has free dims beyond its item dim: items are padded (ragged), its real shapes come in '${v.name}_shape'`);
    }
    return lines;
  };
  const wiring = (vs: ValueInfo[]) => `{ ${vs.map((v) => `${q(v.name)}: ${q(v.name)}`).join(', ')} }`;
  const yaml = [
    `# Written by \`ensemble init ${opts.source}\` from the model's own metadata.`,
    '# Every field is described in docs/manifest.md.',
    `name: ${opts.name}`,
    'version: "1"',
    `description: ${q(`${opts.source} served whole${info.producer ? ` (made by ${info.producer})` : ''}`)}`,
    '',
    '# What a request sends and gets back. Dim 0 of every tensor is the item (batch) dim: a request of',
    '# n rows is n items, and the stage below batches items of concurrent requests together.',
    'inputs:',
    ...info.inputs.flatMap((v) => tensor(v, false)),
    'outputs:',
    ...info.outputs.flatMap((v) => tensor(v, true)),
    '',
    'stages:',
    '  - name: model',
    '    kind: onnx',
    '    weights:',
    `      key: ${opts.name}/${opts.file}     # object key in the weights bucket (npm start pushes it there)`,
    `      sha256: ${opts.sha256}   # what the weights must hash to, checked before serving`,
    `      source: ${opts.file}     # the local file, next to this manifest`,
    `    inputs: ${wiring(info.inputs)}     # model input: pipeline tensor`,
    `    outputs: ${wiring(info.outputs)}   # model output: pipeline tensor`,
    '    batch:',
    maxSize > 1
      ? `      max_size: ${maxSize}        # most items in one call; bigger batches use the CPU better, up to a point (npx ensemble tune)`
      : oneItem
        ? `      max_size: 1        # ${oneItem.replace(/\s+/g, ' ')}: one item per call`
        : '      max_size: 1        # the model\'s batch dim is fixed to 1: one item per call',
    `      max_delay_ms: ${INIT_MAX_DELAY_MS}    # how long the first item of a batch waits for more`,
    '    scale:',
    `      instances: ${INIT_INSTANCES}       # locally: worker processes, each with its own session (batches run side by side); on Lambda each batch is an Invoke`,
    '      threads: 1         # ONNX Runtime intra-op threads per session',
    '      memory_mb: 1024    # Lambda memory for this stage',
    '    timeout_ms: 30000    # a call that takes longer fails with 504 and its worker is replaced',
    '',
  ].join('\n');
  return { name: opts.name, yaml, example: exampleRequest(info), maxSize, notes };
}

/** `items` items per input (one unless given), every free dim `free`, zeros: a request to show the path works. */
export function exampleRequest(info: ModelInfo, free = 1, items = 1): InitPlan['example'] {
  const layout = layoutOf(info);
  return {
    inputs: info.inputs.map((v) => {
      const l = layout.get(v.name)!;
      const shape = l.perRequest ? [] : v.shape.map((d, a) => (a === l.axis ? items : typeof d === 'number' && d > 0 ? d : free));
      const n = shape.reduce((a, b) => a * b, 1);
      return { name: v.name, datatype: v.datatype!, shape, data: Array.from({ length: n }, () => exampleValue(v.datatype!)) };
    }),
  };
}

function exampleValue(dt: Datatype): unknown {
  if (dt === 'BYTES') return '';
  if (dt === 'BOOL') return false;
  return 0;
}
