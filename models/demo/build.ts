/**
 * Builds the demo pipeline's two ONNX models from the literal weights below,
 * so no binary is committed and the sha256s in models/demo/pipeline.yaml stay
 * reproducible: the same code always writes the same bytes.
 *
 *   npx tsx models/demo/build.ts [outDir]     (default: models/demo/build)
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GraphBuilder } from '@ensemble/tools/onnx/builder.js';

export interface DenseWeights {
  /** [4][3], row-major: input feature -> output unit. */
  w: readonly (readonly number[])[];
  /** [3] */
  b: readonly number[];
}

/** Fixed, non-trivial weights; branch_a feeds a Relu, branch_b a Sigmoid. */
export const DEMO_WEIGHTS: { readonly branch_a: DenseWeights; readonly branch_b: DenseWeights } = {
  branch_a: {
    w: [
      [0.5, -0.25, 1.0],
      [-1.5, 0.75, 0.125],
      [0.25, 1.25, -0.5],
      [1.0, -0.5, 0.375],
    ],
    b: [0.1, -0.2, 0.05],
  },
  branch_b: {
    w: [
      [-0.75, 0.5, 0.25],
      [0.375, -1.0, 0.625],
      [1.125, 0.25, -0.875],
      [-0.5, 0.875, 0.5],
    ],
    b: [-0.05, 0.3, -0.15],
  },
};

export const DEMO_IN = 4;
export const DEMO_OUT = 3;

function denseModel(name: string, weights: DenseWeights, activation: 'Relu' | 'Sigmoid'): Uint8Array {
  return new GraphBuilder(name)
    .input('input', 'FP32', ['batch', DEMO_IN])
    .output('output', 'FP32', ['batch', DEMO_OUT])
    .initializer('W', 'FP32', [DEMO_IN, DEMO_OUT], Float32Array.from(weights.w.flat()))
    .initializer('B', 'FP32', [DEMO_OUT], Float32Array.from(weights.b))
    .node('MatMul', ['input', 'W'], ['xw'])
    .node('Add', ['xw', 'B'], ['xwb'])
    .node(activation, ['xwb'], ['output'])
    .build({ producer: 'ensemble-demo' });
}

export interface BuiltModel {
  /** Absolute path of the written file. */
  file: string;
  /** Object key in the weights bucket, as the demo manifest names it. */
  key: string;
  sha256: string;
}

export async function buildDemoModels(outDir: string): Promise<BuiltModel[]> {
  await mkdir(outDir, { recursive: true });
  const models: [string, Uint8Array][] = [
    ['branch_a.onnx', denseModel('branch_a', DEMO_WEIGHTS.branch_a, 'Relu')],
    ['branch_b.onnx', denseModel('branch_b', DEMO_WEIGHTS.branch_b, 'Sigmoid')],
  ];
  const built: BuiltModel[] = [];
  for (const [name, bytes] of models) {
    const file = resolve(outDir, name);
    // Written aside and renamed: a server (or a test in another process) starting meanwhile never loads half a model.
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, bytes);
    await rename(partial, file);
    built.push({ file, key: `demo/${name}`, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  return built;
}

// Run directly (not imported): write the files and print their sha256s.
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const outDir = process.argv[2] ? resolve(process.argv[2]) : join(fileURLToPath(new URL('.', import.meta.url)), 'build');
  for (const m of await buildDemoModels(outDir)) console.log(`${m.sha256}  ${m.key}  ${m.file}`);
}

/** The pipeline build hook (`ensemble build-models`, and `ensemble serve` when files are missing). */
export async function build(pipelineDir: string): Promise<void> {
  await buildDemoModels(join(pipelineDir, 'build'));
}
