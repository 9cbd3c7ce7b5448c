/**
 * models/ocr-split: models/ocr with the recogniser cut in two by decompose.
 * Its build is deterministic (the pinned sha256s stay valid), its manifest is
 * models/ocr's but for the recogniser, its two stages compute the whole
 * recogniser on real text-line crops, and it reads the same text as models/ocr.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, buildRecognizerStages } from '../../../../models/ocr-split/build.js';
import { editDistance, renderTextImage } from '../../src/bench/render.js';
import { verifyPipeline } from '../../src/decompose/verify.js';
import { LocalFileWeightStore } from '../../src/pipelines/local-weights.js';
import { Executor } from '../../../core/src/executor/executor.js';
import { loadManifest } from '../../../core/src/manifest/load.js';
import type { FunctionStage, Manifest } from '../../../core/src/manifest/types.js';
import { buildIfNeeded } from '../../src/pipelines/build.js';
import { fromOrt, toOrt } from '../../../core/src/runtime/ort-tensors.js';
import type { FunctionStageModule } from '../../../core/src/runtime/types.js';
import { stackRows } from '../../../core/src/tensor/rows.js';
import type { Item, Tensor } from '../../../core/src/tensor/types.js';
import { InProcessTransport } from '../../../core/src/transport/in-process.js';
import { sha256Hex } from '../../../core/test/fixtures/models.js';

const MODELS = resolve(import.meta.dirname, '../../../../models');
const SPLIT_YAML = join(MODELS, 'ocr-split/pipeline.yaml');
const OCR_YAML = join(MODELS, 'ocr/pipeline.yaml');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ensemble-ocr-split-'));
  dirs.push(dir);
  return dir;
}

interface YamlStage { name: string; module?: string; weights?: { sha256: string }; [k: string]: unknown }
const yamlOf = (file: string) => parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { stages: YamlStage[] };

let split: Manifest;
beforeAll(async () => {
  split = await loadManifest(SPLIT_YAML);
  await buildIfNeeded(split);
});

describe('models/ocr-split', () => {
  it('builds the same stage models every time, with the sha256s pipeline.yaml pins', async () => {
    const a = tempDir();
    await build(a);
    const b = await buildRecognizerStages(tempDir());
    const pinned = Object.fromEntries(yamlOf(SPLIT_YAML).stages.filter((s) => s.weights).map((s) => [s.name, s.weights!.sha256]));
    expect(b.map((s) => s.name)).toEqual(['recognize_1', 'recognize_2']);
    for (const s of b) {
      const first = sha256Hex(readFileSync(join(a, 'build', `${s.name}.onnx`)));
      expect(s.sha256).toBe(first);
      expect(sha256Hex(readFileSync(s.file))).toBe(s.sha256);
      expect(pinned[s.name]).toBe(s.sha256);
    }
  });

  it('is models/ocr but for the recogniser, which runs as two stages', () => {
    const ocr = yamlOf(OCR_YAML);
    const mine = yamlOf(SPLIT_YAML);
    for (const key of ['version', 'inputs', 'outputs', 'defaults', 'max_request_bytes']) expect(mine[key], key).toEqual(ocr[key]);
    const rest = (stages: YamlStage[]) => stages.filter((s) => !s.name.startsWith('recognize'));
    // Function stages are models/ocr's modules, reached from this folder.
    const relocated = rest(ocr.stages).map((s) => (s.module ? { ...s, module: `../ocr/${s.module}` } : s));
    expect(rest(mine.stages)).toEqual(relocated);
    expect(mine.stages.map((s) => s.name)).toEqual(ocr.stages.flatMap((s) => (s.name === 'recognize' ? ['recognize_1', 'recognize_2'] : [s.name])));
    const whole = ocr.stages.find((s) => s.name === 'recognize')!;
    const [r1, r2] = ['recognize_1', 'recognize_2'].map((n) => mine.stages.find((s) => s.name === n)!);
    expect(r1.inputs).toEqual(whole.inputs);
    expect(r2.outputs).toEqual(whole.outputs);
    expect(r1.batch).toEqual(whole.batch);
  });
});

/** models/ocr's recogniser (built if missing), the model ocr-split's stages are cut from. */
async function greedyRecogniserFile(): Promise<string> {
  const ocr = await loadManifest(OCR_YAML);
  await buildIfNeeded(ocr);
  const rec = ocr.stages.find((s) => s.name === 'recognize');
  if (rec?.kind !== 'onnx' || !rec.weights.source) throw new Error('models/ocr has no ONNX recognize stage');
  return rec.weights.source;
}

// ---- real text-line crops, made by models/ocr's own stages ----

async function stageModule(m: Manifest, name: string): Promise<(item: Item) => Promise<Item | Item[]>> {
  const s = m.stages.find((x) => x.name === name) as FunctionStage;
  const mod = ((await import(pathToFileURL(s.module).href)) as { default: FunctionStageModule }).default;
  const ctx = { stage: s.name, pipeline: m.name, options: s.options, dir: m.dir };
  await mod.init?.(ctx);
  return async (item) => mod.process(item, ctx);
}

/** rec_input tensors (FP32 [3, 48, W]) for every line the detector finds in `image`. */
async function lineCrops(m: Manifest, detector: ort.InferenceSession, image: Uint8Array): Promise<Tensor[]> {
  const run = async (name: string, item: Item) => (await stageModule(m, name))(item);
  const { rgb } = await run('decode', { image: { datatype: 'BYTES', shape: [], data: [image] } }) as Item;
  const pre = await run('detect-pre', { rgb }) as Item;
  const out = await detector.run({ x: toOrt(stackRows([pre.det_input])) });
  const prob = fromOrt(out[detector.outputNames[0]] as ort.Tensor, 'det_prob');
  const det_prob: Tensor = { ...prob, shape: prob.shape.slice(1) };
  const { boxes } = await run('detect-post', { det_prob, det_scale: pre.det_scale }) as Item;
  const lines = await run('crop', { rgb, boxes }) as Item[];
  const crops: Tensor[] = [];
  for (const l of lines) crops.push(((await run('rec-pre', { line_upright: l.line })) as Item).rec_input);
  return crops;
}

const PAGES = [
  ['Invoice 2024-118', 'Total amount due 1,337.50'],
  ['The quick brown fox', 'jumps over the lazy dog', 'Shipping address: 42 Market St'],
  ['Balance 98765', 'reference number AB-7731'],
];

describe('models/ocr-split on rendered text', () => {
  it('its recognition stages compute the whole recogniser within 1e-4 on real text-line crops', async () => {
    const detect = split.stages.find((s) => s.name === 'detect');
    if (detect?.kind !== 'onnx' || !detect.weights.source) throw new Error('ocr-split has no ONNX detect stage');
    const detector = await ort.InferenceSession.create(detect.weights.source, { intraOpNumThreads: 1 });
    const crops: Tensor[] = [];
    try {
      for (const lines of PAGES) crops.push(...await lineCrops(split, detector, await renderTextImage({ lines, size: 30 })));
    } finally {
      await detector.release();
    }
    expect(crops.length).toBeGreaterThanOrEqual(7);
    const widths = crops.map((c) => c.shape[2]);
    expect(new Set(widths).size).toBeGreaterThan(1);
    // Each line alone, and all of them as one batch zero-padded to the widest, as the pipeline batches them.
    const inputs = [
      ...crops.map((c) => ({ x: stackRows([c]) })),
      { x: stackRows(crops, { padAxis: 2, padValue: 0 }) },
    ];
    // The whole model is models/ocr's: the shipped recogniser with its greedy head, which is what ocr-split cuts.
    const result = await verifyPipeline(split, await greedyRecogniserFile(), { inputs, atol: 1e-4, rtol: 1e-4 });
    console.log(`recognize_1 + recognize_2 vs the whole recogniser on ${crops.length} crops (widths ${widths.join(', ')}), `
      + `alone and as one padded batch: ${result.outputs.map((o) => `${o.output} max abs ${o.maxAbs}, max rel ${o.maxRel}`).join('; ')}`);
    expect(result.stages).toEqual(['recognize_1', 'recognize_2']);
    expect(result.outputs).toHaveLength(1);
    expect(result.outputs[0]).toMatchObject({ output: 'rec_best', tensor: 'rec_best' });
    // Under 1e-4: the best class (a whole number) is the same at every step, and its probability within 1e-4.
    expect(result.outputs[0].maxAbs).toBeLessThanOrEqual(1e-4);
    expect(result.ok).toBe(true);
  });

  it('reads the same text as models/ocr', async () => {
    const ocr = await loadManifest(OCR_YAML);
    const run = async (m: Manifest, images: Uint8Array[]): Promise<string[][]> => {
      const transport = new InProcessTransport(new LocalFileWeightStore(m));
      const ex = await Executor.create(m, transport);
      try {
        const texts: string[][] = [];
        for (const image of images) {
          const { outputs } = await ex.run({ image: { datatype: 'BYTES', shape: [1], data: [image] } });
          texts.push((outputs.text.data as Uint8Array[]).map((b) => new TextDecoder().decode(b)));
        }
        return texts;
      } finally {
        await ex.close();
        await transport.close();
      }
    };
    const images = await Promise.all(PAGES.map((lines) => renderTextImage({ lines, size: 30 })));
    const expected = await run(ocr, images);
    const actual = await run(split, images);
    expect(actual).toEqual(expected);
    console.log(`models/ocr and models/ocr-split both read: ${JSON.stringify(actual)}`);
    // And it is reading: the text is what was drawn (a few characters of slack for the recogniser).
    for (const [i, lines] of PAGES.entries()) {
      expect(editDistance(lines.join(' '), expected[i].join(' '))).toBeLessThanOrEqual(3);
    }
  });
});
