import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from '../onnx/builder.js';

/**
 * A model already cut in two, for the pipelining benchmark when no
 * decomposed OCR model is around: each half turns its row into a size × size
 * matrix and multiplies it `iterations` times by a permutation (a real GEMM
 * for ONNX Runtime, exact so nothing overflows), then reduces it back to a
 * row. The halves hand a `size`-wide row to each other, as a cut through a
 * network hands over an activation.
 */
export interface SplitModelOptions {
  size: number;
  /** GEMMs per item in the first and second half: their ratio is the ratio of the stage times. */
  iterations: [number, number];
}

function half(name: string, inName: string, inDim: number, outName: string, outDim: number, size: number, iterations: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  const rand = () => { s = (Math.imul(s ^ (s >>> 15), 2246822507) + 0x9e3779b9) >>> 0; return (s / 4294967296) * 2 - 1; };
  const win = Float32Array.from({ length: inDim * size }, () => rand() * 0.5);
  const r = Float32Array.from({ length: size }, () => rand());
  const c = Float32Array.from({ length: size * outDim }, () => rand() / Math.sqrt(size));
  const perm = new Float32Array(size * size);
  for (let j = 0; j < size; j++) perm[((j + 1) % size) * size + j] = 1;
  const g = new GraphBuilder(name)
    .input(inName, 'FP32', ['batch', inDim])
    .output(outName, 'FP32', ['batch', outDim])
    .initializer('win', 'FP32', [inDim, size], win)
    .initializer('axes', 'INT64', [1], BigInt64Array.of(2n))
    .initializer('r', 'FP32', [1, size], r)
    .initializer('perm', 'FP32', [size, size], perm)
    .initializer('c', 'FP32', [size, outDim], c)
    .initializer('sum_axes', 'INT64', [1], BigInt64Array.of(1n))
    .node('MatMul', [inName, 'win'], ['e'])
    .node('Unsqueeze', ['e', 'axes'], ['e3'])
    .node('Mul', ['e3', 'r'], ['m0']);
  let m = 'm0';
  for (let i = 1; i <= iterations; i++) {
    g.node('MatMul', [m, 'perm'], [`m${i}`]);
    m = `m${i}`;
  }
  return g.node('MatMul', [m, 'c'], ['z']).node('ReduceSum', ['z', 'sum_axes'], [outName], { keepdims: 0 }).build({ producer: 'ensemble-bench' });
}

export const SPLIT_PIPELINE = 'bench-split';

/** Writes `<modelsDir>/bench-split/` (two models and the pipeline.yaml); batch size and scale as given. */
export async function writeSplitPipeline(modelsDir: string, o: SplitModelOptions & { batch: number }): Promise<string> {
  const dir = join(modelsDir, SPLIT_PIPELINE);
  await mkdir(dir, { recursive: true });
  const models = [
    half('split_1', 'x', 4, 'h', 16, o.size, o.iterations[0], 11),
    half('split_2', 'h', 16, 'y', 4, o.size, o.iterations[1], 12),
  ];
  const shas: string[] = [];
  for (const [i, bytes] of models.entries()) {
    await writeFile(join(dir, `split_${i + 1}.onnx`), bytes);
    shas.push(createHash('sha256').update(bytes).digest('hex'));
  }
  const stage = (i: number, input: string, output: string) => [
    `  - name: split_${i}`,
    '    kind: onnx',
    `    weights: { key: ${SPLIT_PIPELINE}/split_${i}.onnx, sha256: ${shas[i - 1]}, source: split_${i}.onnx }`,
    `    inputs: { ${input}: ${input} }`,
    `    outputs: { ${output}: ${output} }`,
    `    batch: { max_size: ${o.batch}, max_delay_ms: 2 }`,
    '    scale: { instances: 1, threads: 1 }',
  ].join('\n');
  const yaml = [
    `name: ${SPLIT_PIPELINE}`,
    'description: A generated model cut in two stages (benchmark of pipelined execution).',
    'inputs:', '  - { name: x, datatype: FP32, shape: [-1, 4] }',
    'outputs:', '  - { name: y, datatype: FP32, shape: [-1, 4] }',
    'stages:', stage(1, 'x', 'h'), stage(2, 'h', 'y'), '',
  ].join('\n');
  const file = join(dir, 'pipeline.yaml');
  await writeFile(file, yaml);
  return file;
}
