import { InferenceSession } from 'onnxruntime-node';
import type { WeightStore } from '../storage/types.js';
import type { Datatype } from '../tensor/types.js';
import { locatorOf, stageWhere, type Locator } from './locator.js';
import { formatShape, shapeMismatch } from './shapes.js';
import { didYouMean } from './suggest.js';
import type { Manifest, OnnxStage, TensorSpec } from './types.js';

/** onnxruntime's tensor type names -> Open Inference Protocol datatypes. */
const ORT_DATATYPES: Record<string, Datatype> = {
  bool: 'BOOL', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64',
  int8: 'INT8', int16: 'INT16', int32: 'INT32', int64: 'INT64',
  float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'BYTES',
};

/** A model input or output as the model declares it; -1 for symbolic dims, null shape when the rank is unknown. */
interface ModelValue {
  name: string;
  datatype: Datatype;
  shape: number[] | null;
  /** As declared, symbolic names kept, for messages. */
  declared: string;
}

/**
 * The checks that need the weights: every ONNX stage's object exists and
 * matches its sha256, and the model's own inputs and outputs agree with what
 * the manifest wires into them. Fills `m.tensors` with the ONNX outputs' specs
 * on the way, so downstream ONNX stages are checked against them too.
 * Returns stage name -> local weights file.
 */
export async function verifyManifest(m: Manifest, weights: WeightStore): Promise<Record<string, string>> {
  const loc = locatorOf(m);
  const stages = new Map(m.stages.map((s) => [s.name, s]));
  const files: Record<string, string> = {};
  // Topological order: an ONNX stage's outputs are typed before anyone reads them.
  for (const name of m.order) {
    const stage = stages.get(name);
    if (stage?.kind !== 'onnx') continue;
    const file = await resolveWeights(stage, weights, loc);
    const { inputs, outputs } = await readModelMetadata(stage, file, loc);
    checkInputs(m, stage, inputs, loc);
    recordOutputs(m, stage, outputs, loc);
    files[name] = file;
  }
  return files;
}

async function resolveWeights(stage: OnnxStage, weights: WeightStore, loc: Locator): Promise<string> {
  const where = stageWhere(stage.name);
  const { key, sha256 } = stage.weights;
  let head: Awaited<ReturnType<WeightStore['head']>>;
  try {
    head = await weights.head(key);
  } catch (err) {
    throw loc.error(where, 'weights.key', `cannot reach the weights object '${key}': ${(err as Error).message}`);
  }
  if (!head.exists) {
    throw loc.error(where, 'weights.key', `weights object '${key}' is not in the bucket (upload it with \`ensemble push\`)`);
  }
  if (head.sha256 && head.sha256.toLowerCase() !== sha256) {
    throw loc.error(where, 'weights.sha256', `weights object '${key}' has sha256 ${head.sha256.toLowerCase()}, the manifest pins ${sha256}`);
  }
  try {
    return await weights.resolve(key, sha256);
  } catch (err) {
    const message = (err as Error).message;
    // The store checks the hash while downloading; a mismatch there is a sha256 problem, anything else is about the object.
    const field = /sha-?256|hash|digest|checksum/i.test(message) && !/not found/i.test(message) ? 'weights.sha256' : 'weights.key';
    throw loc.error(where, field, `cannot fetch weights object '${key}': ${message}`);
  }
}

async function readModelMetadata(stage: OnnxStage, file: string, loc: Locator): Promise<{ inputs: ModelValue[]; outputs: ModelValue[] }> {
  const where = stageWhere(stage.name);
  let session: InferenceSession;
  try {
    // Only the signature is needed: skip graph optimization to load fast.
    session = await InferenceSession.create(file, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  } catch (err) {
    const message = (err as Error).message;
    // A stage's weights are one object: side files of ONNX external data never reach the cache.
    const hint = /external data/i.test(message)
      ? '; the model keeps its weights in external files, and a stage\'s weights must be one file: `ensemble init <model.onnx>` (or `ensemble decompose`) writes a model with them inside'
      : '';
    throw loc.error(where, 'weights.key', `ONNX Runtime cannot load the model: ${message}${hint}`);
  }
  try {
    const convert = (meta: readonly InferenceSession.ValueMetadata[], side: 'inputs' | 'outputs'): ModelValue[] =>
      meta.map((v) => {
        if (!v.isTensor) throw loc.error(where, side, `model ${side.slice(0, -1)} '${v.name}' is not a tensor; only tensor inputs and outputs are supported`);
        const datatype = ORT_DATATYPES[v.type];
        if (!datatype) throw loc.error(where, side, `model ${side.slice(0, -1)} '${v.name}' has element type ${v.type}, which has no Open Inference Protocol datatype`);
        // ORT reports an unknown rank as an empty shape; a scalar cannot carry a batch dim anyway.
        const shape = v.shape.length === 0 ? null : v.shape.map((d) => (typeof d === 'number' ? d : -1));
        return { name: v.name, datatype, shape, declared: formatShape(v.shape.map((d) => (d === '' ? '?' : d))) };
      });
    return { inputs: convert(session.inputMetadata, 'inputs'), outputs: convert(session.outputMetadata, 'outputs') };
  } finally {
    await session.release();
  }
}

function checkInputs(m: Manifest, stage: OnnxStage, inputs: ModelValue[], loc: Locator): void {
  const where = stageWhere(stage.name);
  const byName = new Map(inputs.map((v) => [v.name, v]));
  for (const [local, tensor] of Object.entries(stage.inputs)) {
    const model = byName.get(local);
    if (!model) {
      throw loc.error(where, `inputs.${local}`,
        `'${local}' is not an input of the model${didYouMean(local, byName.keys(), true)} (model inputs: ${[...byName.keys()].join(', ')})`);
    }
    const known = m.tensors[tensor];
    if (known) checkAgainstModel(loc, where, `inputs.${local}`, known, model, 'input');
    checkBatchable(stage, local, model, loc);
  }
  const fed = new Set(Object.keys(stage.inputs));
  for (const v of inputs) {
    if (!fed.has(v.name)) {
      throw loc.error(where, 'inputs', `model input '${v.name}' ${v.datatype} ${v.declared} is not fed: map it to a tensor (inputs: { ${v.name}: <tensor> })`);
    }
  }
}

/** A model whose batch dim is fixed cannot take the batches the batcher makes. */
function checkBatchable(stage: OnnxStage, local: string, model: ModelValue, loc: Locator): void {
  const where = stageWhere(stage.name);
  if (!model.shape) return;
  // Fed whole to every call: the batch does not change its shape.
  if (stage.perRequest?.includes(local)) return;
  const batchAxis = stage.inputAxes?.[local] ?? 0;
  const dim = model.shape[batchAxis];
  if (stage.batch.maxSize > 1 && dim !== -1) {
    const why = dim === 1 ? ': the model takes one item per call; set batch.max_size: 1' : '';
    throw loc.error(where, 'batch.max_size',
      `${stage.batch.maxSize} needs a dynamic batch dim, but model input '${model.name}' is ${model.declared} (batch axis ${batchAxis} is fixed to ${dim})${why}`);
  }
  const axis = stage.batch.padAxis;
  if (axis !== undefined && axis >= model.shape.length - 1) {
    throw loc.error(where, 'batch.pad_axis', `axis ${axis} is out of range for model input '${model.name}' ${model.declared} (per-item rank ${model.shape.length - 1})`);
  }
}

function recordOutputs(m: Manifest, stage: OnnxStage, outputs: ModelValue[], loc: Locator): void {
  const where = stageWhere(stage.name);
  const byName = new Map(outputs.map((v) => [v.name, v]));
  for (const [local, tensor] of Object.entries(stage.outputs)) {
    const model = byName.get(local);
    if (!model) {
      throw loc.error(where, `outputs.${local}`,
        `'${local}' is not an output of the model${didYouMean(local, byName.keys(), true)} (model outputs: ${[...byName.keys()].join(', ')})`);
    }
    const declared = m.tensors[tensor];
    if (declared) {
      // A pipeline output the manifest types itself: the model must agree; the declared spec stays.
      checkAgainstModel(loc, where, `outputs.${local}`, declared, model, 'output');
    } else if (model.shape) {
      m.tensors[tensor] = { name: tensor, datatype: model.datatype, shape: model.shape };
    }
  }
}

function checkAgainstModel(loc: Locator, where: string, field: string, spec: TensorSpec, model: ModelValue, side: 'input' | 'output'): void {
  const what = `tensor '${spec.name}' ${spec.datatype} ${formatShape(spec.shape)}`;
  const their = `model ${side} '${model.name}' ${model.datatype} ${model.declared}`;
  if (spec.datatype !== model.datatype) {
    throw loc.error(where, field, `datatype mismatch: ${what} vs ${their}`);
  }
  if (!model.shape) return;
  if (spec.shape.length !== model.shape.length) {
    throw loc.error(where, field, `rank mismatch: ${what} has rank ${spec.shape.length}, ${their} has rank ${model.shape.length}`);
  }
  const why = shapeMismatch(spec.shape, model.shape, spec.perRequest ? -1 : spec.batchAxis ?? 0);
  if (why) throw loc.error(where, field, `shape mismatch (${why}): ${what} vs ${their}`);
}
