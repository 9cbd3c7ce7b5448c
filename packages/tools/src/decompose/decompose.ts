/**
 * The whole `ensemble decompose` job on files: cut a model, write one .onnx
 * per stage and a pipeline.yaml wiring them, and time each stage on a sample
 * input so the user sees how even the cut came out.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { embedExternalData } from '../onnx/external-data.js';
import { basename, join, resolve } from 'node:path';
import { inspectModel } from '../onnx/inspect.js';
import { toOrt } from '@ensemble/core/runtime/ort-tensors.js';
import { cutModel } from './cut.js';
import { pipelineName, pipelineYaml, type PipelineOptions } from './manifest-fragment.js';
import { runStages, timeModel } from './run-stages.js';
import { sampleInputs } from './samples.js';
import type { CutOptions, CutPlan, CutResult } from './types.js';

export interface DecomposeOptions extends CutOptions {
  /** Where the stage models and pipeline.yaml go. */
  outDir: string;
  /** Stage prefix and pipeline name (default: the model file's name). */
  name?: string;
  /** Time each stage on a sample input of this many rows (0: do not time). */
  sampleBatch?: number;
  /** Timed runs per stage (median reported; default 5). */
  runs?: number;
  /** Every stage's batch block in the manifest written (default: none). */
  batch?: PipelineOptions['batch'];
  /** Every stage's scale block in the manifest written (default: none). */
  scale?: PipelineOptions['scale'];
}

export interface DecomposeReport {
  cut: CutResult;
  /** Absolute paths of the stage models, in stage order. */
  files: string[];
  manifestPath: string;
  /** Median ms per stage and for the whole model, when timed. */
  timing?: { stageMs: number[]; wholeMs: number; sampleShapes: Record<string, number[]> };
}

export async function decomposeModel(modelPath: string, plan: CutPlan, opts: DecomposeOptions): Promise<DecomposeReport> {
  const log = opts.log ?? (() => undefined);
  const name = opts.name ?? pipelineName(basename(modelPath).replace(/\.onnx$/i, ''));
  // Weights kept in side files are read into the model first: each stage file holds its own.
  const { bytes, files: external } = await embedExternalData(new Uint8Array(await readFile(modelPath)), modelPath);
  if (external.length) log(`read the weights kept in ${external.join(', ')} into the stage files`);
  const cut = await cutModel(bytes, plan, { ...opts, name });

  const outDir = resolve(opts.outDir);
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  for (const s of cut.stages) {
    const file = join(outDir, `${s.name}.onnx`);
    await writeFile(file, s.bytes);
    files.push(file);
  }
  const manifestPath = join(outDir, 'pipeline.yaml');
  const planText = 'stages' in plan ? `--stages ${plan.stages}` : `--at ${plan.at.join(',')}`;
  await writeFile(manifestPath, pipelineYaml(cut, {
    name: pipelineName(name),
    keyPrefix: pipelineName(name),
    sourceDir: '',
    batch: opts.batch,
    scale: opts.scale,
    description: `${basename(modelPath)} cut into ${cut.stages.length} stages`,
    header: `Written by \`ensemble decompose ${basename(modelPath)} ${planText}\`.\nThe stages: block can be pasted into another pipeline (fix weights.source paths and tensor names).`,
  }));
  log(`wrote ${files.length} stage models and ${manifestPath}`);

  const report: DecomposeReport = { cut, files, manifestPath };
  const sampleBatch = opts.sampleBatch ?? 1;
  if (sampleBatch > 0) {
    const feeds = sampleInputs(inspectModel(bytes).inputs, { batch: sampleBatch, dims: opts.dims, seed: 7 });
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toOrt(t)]));
    log(`timing ${cut.stages.length} stages and the whole model (median of ${opts.runs ?? 5} runs, 1 thread)`);
    const run = await runStages(cut.stages.map((s) => ({ name: s.name, model: s.bytes, inputs: s.inputs })), ortFeeds, { runs: opts.runs ?? 5 });
    const wholeMs = await timeModel(bytes, ortFeeds, { runs: opts.runs ?? 5 });
    report.timing = { stageMs: run.stageMs, wholeMs, sampleShapes: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.shape])) };
  }
  return report;
}
