/**
 * verifyPipeline: run a cut model's stages through the real executor (in
 * process, weights straight from the files the manifest names) and the whole
 * model in ONNX Runtime on the same inputs, and report how far apart each
 * output is. The stages checked are the manifest's ONNX stages cut from that
 * model (their metadata names its sha256), so a larger pipeline — OCR with a
 * recogniser cut in two — can be checked stage group by stage group.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { EnsembleError } from '@ensemble/core/errors.js';
import { Executor } from '@ensemble/core/executor/executor.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest, OnnxStage, StageSpec, TensorSpec } from '@ensemble/core/manifest/types.js';
import { inspectModel, type ValueInfo } from '../onnx/inspect.js';
import { decodeModel } from '../onnx/proto.js';
import { fromOrt, toOrt } from '@ensemble/core/runtime/ort-tensors.js';
import { sha256File } from '@ensemble/core/storage/hash.js';
import type { Tensor } from '@ensemble/core/tensor/types.js';
import { InProcessTransport } from '@ensemble/core/transport/in-process.js';
import { compareTensors, looseTolerance, type Difference, type Tolerance } from './compare.js';
import { sampleInputs } from './samples.js';
import { readProvenance } from './stage-model.js';
import { LocalFileWeightStore } from '../pipelines/local-weights.js';

export interface VerifyOptions {
  /** Inputs keyed by the whole model's input names, one record per sample; generated when absent. */
  inputs?: Record<string, Tensor>[];
  /** Generated samples (default 3), each with `batch` rows (default 2). */
  samples?: number;
  batch?: number;
  /** Sizes of symbolic input dims other than dim 0 for generated samples (default 1). */
  dims?: Record<string, number>;
  /** Allowed |a - b| <= atol + rtol * |b|; each defaults from the datatypes crossing the cuts and of the outputs. */
  atol?: number;
  rtol?: number;
  /** The ONNX stages that make up the model; default: those whose models were cut from it. */
  stages?: string[];
  log?: (line: string) => void;
}

export interface OutputDifference extends Difference {
  /** Output name in the whole model. */
  output: string;
  /** The pipeline tensor that carries it. */
  tensor: string;
}

export interface VerifyReport {
  stages: string[];
  samples: number;
  tolerance: Tolerance;
  /** Datatypes of the tensors crossing between the stages and of the model's outputs, which the default tolerance comes from. */
  crossing: string[];
  outputTypes: string[];
  /** Worst difference over all samples, per model output. */
  outputs: OutputDifference[];
  ok: boolean;
}

/** ONNX stages whose model metadata says they were cut from the model with this sha256. */
async function stagesCutFrom(m: Manifest, sha: string): Promise<OnnxStage[]> {
  const found: OnnxStage[] = [];
  for (const s of m.stages) {
    if (s.kind !== 'onnx' || !s.weights.source) continue;
    let bytes: Uint8Array;
    try { bytes = await readFile(s.weights.source); } catch { continue; }
    if (readProvenance(decodeModel(bytes))?.source === sha) found.push(s);
  }
  return found;
}

/** Datatypes of the stage inputs that come from another stage (not from the model's inputs), read from the stage models. */
async function crossingDatatypes(stages: StageSpec[], modelInputs: Set<string>): Promise<string[]> {
  const found = new Set<string>();
  for (const s of stages) {
    if (s.kind !== 'onnx' || !s.weights.source) continue;
    const declared = inspectModel(new Uint8Array(await readFile(s.weights.source))).inputs;
    for (const [onnxName, tensor] of Object.entries(s.inputs)) {
      if (modelInputs.has(tensor)) continue;
      const d = declared.find((v) => v.name === onnxName)?.datatype;
      if (d) found.add(d);
    }
  }
  return [...found].sort();
}

function pipelineSpec(v: ValueInfo, name: string): TensorSpec {
  if (!v.datatype) throw new EnsembleError(`model tensor '${v.name}' has an element type the pipeline cannot carry`, 'invalid_input');
  return { name, datatype: v.datatype, shape: v.shape.map((d, axis) => (axis === 0 || typeof d !== 'number' ? -1 : d)) };
}

/** The selected stages as a pipeline of their own, fed by the model's inputs and ending in its outputs. */
function subPipeline(m: Manifest, stages: StageSpec[], inputs: ValueInfo[], outputs: ValueInfo[]): { manifest: Manifest; inputMap: Map<string, string>; outputMap: Map<string, string> } {
  const find = (name: string, side: 'inputs' | 'outputs'): string => {
    const tensors = new Set(stages.filter((s) => name in s[side]).map((s) => s[side][name]));
    if (tensors.size !== 1) {
      const verb = side === 'inputs' ? 'reads' : 'produces';
      throw new EnsembleError(tensors.size === 0
        ? `no stage of ${stages.map((s) => s.name).join(', ')} ${verb} the model's ${side.slice(0, -1)} '${name}'`
        : `the model's ${side.slice(0, -1)} '${name}' maps to several pipeline tensors (${[...tensors].join(', ')})`, 'invalid_input');
    }
    return [...tensors][0];
  };
  const inputMap = new Map(inputs.map((v) => [v.name, find(v.name, 'inputs')]));
  const outputMap = new Map(outputs.map((v) => [v.name, find(v.name, 'outputs')]));
  const available = new Set([...inputMap.values(), ...stages.flatMap((s) => Object.values(s.outputs))]);
  for (const s of stages) {
    for (const t of Object.values(s.inputs)) {
      if (!available.has(t)) throw new EnsembleError(`stage '${s.name}' reads '${t}', which neither the model's inputs nor stages ${stages.map((x) => x.name).join(', ')} provide`, 'invalid_input');
    }
  }
  const names = new Set(stages.map((s) => s.name));
  const manifest: Manifest = {
    ...m,
    inputs: inputs.map((v) => pipelineSpec(v, inputMap.get(v.name)!)),
    outputs: outputs.map((v) => pipelineSpec(v, outputMap.get(v.name)!)),
    stages,
    order: m.order.filter((s) => names.has(s)),
    // Fed straight with the model's inputs, the stages run at the top level whatever level they had in the big pipeline.
    levels: {},
    lineage: {},
    tensors: {},
  };
  return { manifest, inputMap, outputMap };
}

export async function verifyPipeline(manifest: Manifest | string, modelPath: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const log = opts.log ?? (() => undefined);
  const m = typeof manifest === 'string' ? await loadManifest(manifest) : manifest;
  const info = inspectModel(modelPath);

  let stages: StageSpec[];
  if (opts.stages) {
    stages = opts.stages.map((name) => {
      const s = m.stages.find((x) => x.name === name);
      if (!s) throw new EnsembleError(`${m.file}: no stage '${name}'`, 'usage');
      return s;
    });
  } else {
    stages = await stagesCutFrom(m, await sha256File(modelPath));
    if (stages.length === 0) {
      throw new EnsembleError(`${m.file}: no ONNX stage was cut from ${modelPath} (checked the decompose metadata of every stage's weights.source); name the stages to compare`, 'invalid_input');
    }
  }
  const { manifest: sub, inputMap, outputMap } = subPipeline(m, stages, info.inputs, info.outputs);
  const crossing = await crossingDatatypes(stages, new Set(inputMap.values()));
  const outputTypes = [...new Set(info.outputs.map((v) => v.datatype ?? 'BYTES'))];
  const loose = looseTolerance([...crossing, ...outputTypes]);
  const tolerance: Tolerance = { atol: opts.atol ?? loose.atol, rtol: opts.rtol ?? loose.rtol };
  log(`verifying stages ${stages.map((s) => s.name).join(', ')} against ${modelPath}`);

  const samples = opts.inputs ?? Array.from({ length: opts.samples ?? 3 }, (_, i) => sampleInputs(info.inputs, { batch: opts.batch ?? 2, dims: opts.dims, seed: 1000 + i }));
  const worst = new Map<string, OutputDifference>(info.outputs.map((v) => [v.name, { output: v.name, tensor: outputMap.get(v.name)!, maxAbs: 0, maxRel: 0, excess: 0 }]));

  const transport = new InProcessTransport(new LocalFileWeightStore(sub));
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  let executor: Executor | undefined;
  try {
    executor = await Executor.create(sub, transport);
    for (const [i, sample] of samples.entries()) {
      const shapes = Object.entries(sample).map(([k, t]) => `${k} [${t.shape.join(', ')}]`).join(', ');
      log(`sample ${i + 1}/${samples.length}: ${shapes}`);
      const feeds: Record<string, ort.Tensor> = {};
      const pipelineInputs: Record<string, Tensor> = {};
      for (const v of info.inputs) {
        const t = sample[v.name];
        if (!t) throw new EnsembleError(`sample ${i + 1} has no input '${v.name}'`, 'invalid_input');
        feeds[v.name] = toOrt(t);
        pipelineInputs[inputMap.get(v.name)!] = t;
      }
      const expected = await session.run(feeds);
      const { outputs } = await executor.run(pipelineInputs);
      for (const v of info.outputs) {
        const d = compareTensors(outputs[outputMap.get(v.name)!], fromOrt(expected[v.name] as ort.Tensor, `model output '${v.name}'`), tolerance);
        const w = worst.get(v.name)!;
        w.maxAbs = Math.max(w.maxAbs, d.maxAbs);
        w.maxRel = Math.max(w.maxRel, d.maxRel);
        w.excess = Math.max(w.excess, d.excess);
        if (d.problem && !w.problem) w.problem = `sample ${i + 1}: ${d.problem}`;
      }
    }
  } finally {
    await executor?.close();
    await transport.close();
    await session.release();
  }
  const outputs = [...worst.values()];
  return { stages: stages.map((s) => s.name), samples: samples.length, tolerance, crossing, outputTypes, outputs, ok: outputs.every((o) => o.excess <= 1 && !o.problem) };
}
