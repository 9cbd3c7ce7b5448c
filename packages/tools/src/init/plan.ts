/**
 * From what an ONNX model says about itself to a pipeline that serves it
 * whole: tensor specs, batching defaults that fit the model's batch dim, and
 * a first request built from the input shapes. Pure: the command writes the
 * files.
 */
import { EnsembleError } from '@ensemble/core/errors.js';
import type { Datatype } from '@ensemble/core/tensor/types.js';
import type { ModelInfo, ValueInfo } from '../onnx/inspect.js';

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
}

const DEFAULT_MAX_SIZE = 8;

/** The dim as a manifest writes it: -1 for anything not a fixed size. */
const dim = (d: number | string): number => (typeof d === 'number' && d > 0 ? d : -1);

function describe(v: ValueInfo): string {
  return `${v.datatype ?? `element type ${v.elemType}`} [${v.shape.map((d) => (d === '' ? '?' : d)).join(', ')}]`;
}

function checkBatched(v: ValueInfo, side: 'input' | 'output'): void {
  if (!v.datatype) throw new EnsembleError(`model ${side} '${v.name}' has an element type the Open Inference Protocol cannot carry (ONNX type ${v.elemType})`, 'invalid_input');
  if (!v.rankKnown || v.shape.length === 0) {
    throw new EnsembleError(`model ${side} '${v.name}' (${describe(v)}) has no batch dimension: serving it needs a per-request input, which ensemble init does not write yet; write the pipeline by hand (docs/manifest.md)`, 'invalid_input');
  }
  const d0 = v.shape[0];
  if (typeof d0 === 'number' && d0 > 1) {
    throw new EnsembleError(`model ${side} '${v.name}' has its dim 0 fixed to ${d0} (${describe(v)}): the pipeline cuts requests into items along dim 0, and a call of exactly ${d0} items cannot be guaranteed`, 'invalid_input');
  }
}

/** JSON-quoted YAML scalar: tensor names may hold '.', ':' or '/'. */
const q = (s: string): string => JSON.stringify(s);

export function planInit(info: ModelInfo, opts: InitOptions): InitPlan {
  for (const v of info.inputs) checkBatched(v, 'input');
  for (const v of info.outputs) checkBatched(v, 'output');
  const notes: string[] = [];
  const fixedOne = info.inputs.filter((v) => v.shape[0] === 1);
  const maxSize = fixedOne.length ? 1 : DEFAULT_MAX_SIZE;
  if (fixedOne.length) notes.push(`the model takes one item per call (${fixedOne.map((v) => `'${v.name}' dim 0 is 1`).join(', ')}): batch.max_size is 1`);

  const tensor = (v: ValueInfo, output: boolean): string[] => {
    const shape = [-1, ...v.shape.slice(1).map(dim)];
    const lines = [`  - name: ${q(v.name)}`, `    datatype: ${v.datatype}`, `    shape: [${shape.join(', ')}]   # the model's ${describe(v)}; dim 0 is the item dim`];
    if (output && shape.slice(1).includes(-1)) {
      lines.push('    # Free dims beyond dim 0 may differ between items: they are padded to the largest in the response,');
      lines.push('    # and <name>_shape says each item\'s real shape.');
      lines.push(`    ragged: { pad_value: 0, lengths: ${q(`${v.name}_shape`)} }`);
      notes.push(`output '${v.name}' has free dims beyond dim 0: items are padded (ragged), its real shapes come in '${v.name}_shape'`);
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
    maxSize === 1
      ? '      max_size: 1        # the model\'s batch dim is fixed to 1: one item per call'
      : `      max_size: ${maxSize}        # most items in one call; bigger batches use the CPU better, up to a point (npx ensemble tune)`,
    '      max_delay_ms: 2    # how long the first item of a batch waits for more',
    '    scale:',
    '      instances: 1       # locally: worker processes, each with its own session; on Lambda: provisioned instances',
    '      threads: 1         # ONNX Runtime intra-op threads per session',
    '      memory_mb: 1024    # Lambda memory for this stage',
    '    timeout_ms: 30000    # a call that takes longer fails with 504 and its worker is replaced',
    '',
  ].join('\n');
  return { name: opts.name, yaml, example: exampleRequest(info), maxSize, notes };
}

/** One item per input, every free dim `free`, zeros: a request to show the path works. */
export function exampleRequest(info: ModelInfo, free = 1): InitPlan['example'] {
  return {
    inputs: info.inputs.map((v) => {
      const shape = [1, ...v.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : free))];
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
