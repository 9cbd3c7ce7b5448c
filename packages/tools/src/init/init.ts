/**
 * `ensemble init`: an ONNX file in, a pipeline folder out that `npm start`
 * serves with no edit — the weights next to a manifest written from the
 * model's metadata, and a first request to send.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EnsembleError } from '@ensemble/core/errors.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { verifyManifest } from '@ensemble/core/manifest/verify.js';
import { sha256File } from '@ensemble/core/storage/hash.js';
import { decomposeModel } from '../decompose/decompose.js';
import { pipelineName } from '../decompose/manifest-fragment.js';
import { inspectModel } from '../onnx/inspect.js';
import { keepOutputs } from '../decompose/keep-outputs.js';
import { LocalFileWeightStore } from '../pipelines/local-weights.js';
import { embedExternalData } from '../onnx/external-data.js';
import { INIT_INSTANCES, INIT_MAX_DELAY_MS, exampleRequest, initMaxSize, layoutOf, planInit, type InitPlan } from './plan.js';
import type { ModelInfo } from '../onnx/inspect.js';
import * as ort from 'onnxruntime-node';
import { toOrt } from '@ensemble/core/runtime/ort-tensors.js';
import { allocate } from '@ensemble/core/tensor/datatypes.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';

export interface InitPipelineOptions {
  model: string;
  /** Pipeline name (default: from the file name). */
  name?: string;
  /** Cut the model into this many stages (ensemble decompose) instead of serving it whole. */
  stages?: number;
  /** Keep only these model outputs. */
  outputs?: string[];
  /** Where pipeline folders live (default models). */
  modelsDir?: string;
  /** Replace a pipeline folder that exists. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface InitResult {
  name: string;
  dir: string;
  manifestPath: string;
  examplePath: string;
  example: InitPlan['example'];
  notes: string[];
}

const WEIGHTS_FILE = 'model.onnx';
/** Sizes tried for free dims until the model runs on the example (a 1 x 1 image is too small for most CNNs). */
const FREE_DIM_SIZES = [1, 8, 32, 64, 224];

/** What running the model here told: the first request to print, and why it takes one item per call if it does. */
interface Probe {
  example: InitPlan['example'];
  note?: string;
  /** Set when the model ran one item but not two in one call. */
  oneItem?: string;
  /** The size its free dims ran at (absent: it has none, or ran at none tried). */
  freeSize?: number;
}

/**
 * Runs the model here: on one item, for a first request it really runs
 * (free dims grown until it does), then on two items of that request in one
 * call. A batch dim left free in the metadata can still be fixed inside the
 * graph (a Reshape to a constant shape, a loop over dim 0): such a model
 * fails on two items, or answers them with another number of rows, and
 * would fail every call the batcher gives two requests' items, so it is
 * served one item per call.
 */
async function probeModel(bytes: Uint8Array, info: ModelInfo): Promise<Probe> {
  const free = info.inputs.some((v) => v.shape.slice(1).some((d) => typeof d !== 'number' || d <= 0));
  let session: ort.InferenceSession;
  try {
    // Fatal only: the runs expected to fail here would each print ONNX Runtime's own error log.
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 4 });
  } catch {
    // Not for this ONNX Runtime to run here: the manifest is written from the metadata alone.
    return { example: exampleRequest(info) };
  }
  try {
    for (const size of free ? FREE_DIM_SIZES : [1]) {
      const example = exampleRequest(info, size);
      if (await runs(session, example) === undefined) continue; // too small for the model: try the next size
      const note = size === 1 ? undefined : `the example request sets the model's free dims to ${size} (it did not run with smaller ones)`;
      return { example, note, oneItem: await oneItemOnly(session, info, size), ...(free ? { freeSize: size } : {}) };
    }
  } finally {
    await session.release();
  }
  if (!free) return { example: exampleRequest(info) };
  return { example: exampleRequest(info), note: `the model did not run on the example with free dims of ${FREE_DIM_SIZES.join(', ')}: set real sizes in ${'example-request.json'}` };
}

/** The model's outputs on `example`, or undefined if it fails; `error` gets why. */
async function runs(session: ort.InferenceSession, example: InitPlan['example'], error?: (message: string) => void): Promise<ort.InferenceSession.OnnxValueMapType | undefined> {
  const feeds = Object.fromEntries(example.inputs.map((t) => [t.name, toOrt({ datatype: t.datatype, shape: t.shape, data: fromJsonData(t) })]));
  try {
    return await session.run(feeds);
  } catch (e) {
    error?.(e instanceof Error ? e.message : String(e));
    return undefined;
  }
}

/** Why the model cannot take two items in one call, or undefined if it can. */
async function oneItemOnly(session: ort.InferenceSession, info: ModelInfo, free: number): Promise<string | undefined> {
  let failure = '';
  const out = await runs(session, exampleRequest(info, free, 2), (m) => { failure = m; });
  if (!out) return `the model failed on 2 items in one call (${shortError(failure)})`;
  const layout = layoutOf(info);
  for (const v of info.outputs) {
    const l = layout.get(v.name);
    const t = out[v.name] as ort.Tensor | undefined;
    if (!l || l.perRequest || !t) continue;
    const rows = t.dims[l.axis];
    if (rows !== 2) return `the model answered 2 items in one call with ${rows ?? 'no'} items of output '${v.name}' (dims [${t.dims.join(', ')}])`;
  }
  return undefined;
}

/**
 * An ONNX Runtime error, short enough for a YAML comment: for a failing node
 * its type, name and the human part of the status (after the source
 * location and the check that failed).
 */
function shortError(message: string): string {
  let line = message.split('\n').map((l) => l.trim()).find(Boolean) ?? 'no message';
  const node = /running (\S+) node\. Name:'([^']*)' Status Message: (.*)$/.exec(line);
  if (node) {
    const status = node[3];
    const human = status.lastIndexOf(' was false. ');
    line = `${node[1]} node '${node[2]}': ${human >= 0 ? status.slice(human + ' was false. '.length) : status}`;
  }
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

/** Every named free dim of the inputs but their items' axis, at `size` (undefined: decompose's default of 1). */
function freeDims(info: ModelInfo, size: number | undefined): Record<string, number> | undefined {
  if (size === undefined) return undefined;
  const layout = layoutOf(info);
  const dims: Record<string, number> = {};
  for (const v of info.inputs) {
    const l = layout.get(v.name)!;
    v.shape.forEach((d, a) => { if (typeof d === 'string' && d !== '' && (l.perRequest || a !== l.axis)) dims[d] = size; });
  }
  return dims;
}

function fromJsonData(t: InitPlan['example']['inputs'][number]): Tensor['data'] {
  const n = t.data.length;
  if (t.datatype === 'BYTES') return Array.from({ length: n }, () => new Uint8Array(0));
  return allocate(t.datatype, n);
}

export async function initPipeline(opts: InitPipelineOptions): Promise<InitResult> {
  const log = opts.log ?? (() => undefined);
  if (!existsSync(opts.model)) throw new EnsembleError(`no such model file: ${opts.model}`, 'usage');
  if (!statSync(opts.model).isFile()) throw new EnsembleError(`${opts.model} is a folder, not an ONNX file: name the .onnx file in it`, 'usage');
  const name = opts.name ?? pipelineName(path.basename(opts.model).replace(/\.onnx$/i, ''));
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new EnsembleError(`'${name}' is not a valid pipeline name: use lowercase letters, digits, '-' and '_' (--name)`, 'usage');
  const dir = path.resolve(opts.modelsDir ?? 'models', name);
  if (existsSync(dir)) {
    if (!opts.force) throw new EnsembleError(`${dir} already exists: pick another --name, or --force to replace it`, 'usage');
    await rm(dir, { recursive: true, force: true });
  }
  let bytes: Uint8Array = new Uint8Array(await readFile(opts.model));
  const notes: string[] = [];
  const embedded = await embedExternalData(bytes, opts.model);
  if (embedded.files.length) {
    bytes = embedded.bytes;
    notes.push(`the weights kept in ${embedded.files.join(', ')} are inside ${opts.stages !== undefined ? 'the stage files' : WEIGHTS_FILE} now: a stage's weights are one file`);
  }
  if (opts.outputs?.length) {
    const kept = keepOutputs(bytes, opts.outputs);
    bytes = kept.bytes;
    notes.push(`kept output${opts.outputs.length > 1 ? 's' : ''} ${opts.outputs.join(', ')}; ${kept.droppedNodes} nodes that fed only the others were dropped`);
  }
  const info = inspectModel(bytes);
  const probe = await probeModel(bytes, info);
  await mkdir(dir, { recursive: true });
  const manifestPath = path.join(dir, 'pipeline.yaml');
  try {
    if (opts.stages !== undefined) {
      const tmp = await mkdtemp(path.join(tmpdir(), 'ensemble-init-'));
      try {
        const file = path.join(tmp, path.basename(opts.model));
        await writeFile(file, bytes);
        log(`cutting ${opts.model} into ${opts.stages} stages`);
        // The cut is probed at the free dims' size the whole model ran at, and its stages batch as the whole would.
        await decomposeModel(file, { stages: opts.stages }, {
          outDir: dir, name, sampleBatch: 0, log, dims: freeDims(info, probe.freeSize),
          batch: { max_size: initMaxSize(info, probe.oneItem), max_delay_ms: INIT_MAX_DELAY_MS }, scale: { instances: INIT_INSTANCES },
        });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    } else {
      const weights = path.join(dir, WEIGHTS_FILE);
      await writeFile(weights, bytes);
      const plan = planInit(info, { name, file: WEIGHTS_FILE, sha256: await sha256File(weights), source: path.basename(opts.model), oneItem: probe.oneItem });
      notes.push(...plan.notes);
      await writeFile(manifestPath, plan.yaml);
    }
    // What npm start will check, checked now: a manifest init wrote must load and match its models.
    const m = await loadManifest(manifestPath);
    await verifyManifest(m, new LocalFileWeightStore(m));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const { example, note } = probe;
  if (note) notes.push(note);
  const examplePath = path.join(dir, 'example-request.json');
  await writeFile(examplePath, `${JSON.stringify(example)}\n`);
  return { name, dir, manifestPath, examplePath, example, notes };
}
