/**
 * The OCR pipeline's stages chained by hand on the real PP-OCRv4 models, with
 * the wiring (tensor names, options, batch sizes, padding) read from
 * models/ocr/pipeline.yaml, on images rendered here with known text.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError } from '../packages/core/src/errors.js';
import type { FunctionStageContext, FunctionStageModule } from '../packages/core/src/runtime/types.js';
import type { Item, Tensor } from '../packages/core/src/tensor/types.js';
import { buildGreedyRecogniser, recogniserPath } from '../models/ocr/build.js';
import { ctcGreedyDecode, ctcGreedyDecodeBest, loadCharset } from '../models/ocr/lib/ctc.js';
import { resolveAsset } from '../models/ocr/lib/assets.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { convexHull, minAreaRect, type Quad } from '../models/ocr/lib/geometry.js';
import { perspectiveTransform, warpPerspective, warpQuad } from '../models/ocr/lib/warp.js';
import { sortReadingOrder } from '../models/ocr/lib/db-postprocess.js';
import { editDistance, renderTextImage, textLayout } from '../packages/tools/src/bench/render.js';
import { WORDS, expectReadingOrder, ocrSampleSpecs, scoreLines } from './helpers/ocr-samples.js';

const here = dirname(fileURLToPath(import.meta.url));
const modelDir = resolve(here, '../models/ocr');
const manifestFile = resolve(modelDir, 'pipeline.yaml');

// ---- the manifest, read just enough to wire stages the way it says ----

interface YamlStage {
  name: string;
  kind: 'onnx' | 'function';
  module?: string;
  fanout?: boolean;
  weights?: { key: string; sha256: string; source: string };
  inputs: string[] | Record<string, string>;
  outputs: (string | { name: string })[] | Record<string, string>;
  batch?: { max_size?: number; pad_axis?: number; pad_value?: number };
  options?: Record<string, unknown>;
}
const manifest = parse(readFileSync(manifestFile, 'utf8')) as { stages: YamlStage[] };

function stageSpec(name: string): YamlStage {
  const s = manifest.stages.find((x) => x.name === name);
  if (!s) throw new Error(`pipeline.yaml has no stage '${name}'`);
  return s;
}
/** stage-local name -> pipeline tensor name */
function ioMap(io: YamlStage['inputs'] | YamlStage['outputs']): Record<string, string> {
  if (!Array.isArray(io)) return io;
  return Object.fromEntries(io.map((e) => { const n = typeof e === 'string' ? e : e.name; return [n, n]; }));
}

// ---- running stages over "environments" (every tensor known for one item) ----

type Env = Record<string, Tensor>;
/** Every line the recogniser saw, with what its greedy head returned. */
const recognised: Env[] = [];
const timings: Record<string, number> = {};
const sessions: Record<string, ort.InferenceSession> = {};
const modules: Record<string, { mod: FunctionStageModule; ctx: FunctionStageContext }> = {};

function timed<T>(stage: string, t0: number, value: T): T {
  timings[stage] = (timings[stage] ?? 0) + performance.now() - t0;
  return value;
}

async function loadFunctionStage(spec: YamlStage): Promise<void> {
  const mod = (await import(pathToFileURL(resolve(modelDir, spec.module!)).href)) as { default: FunctionStageModule };
  const ctx: FunctionStageContext = { stage: spec.name, pipeline: 'ocr', options: spec.options ?? {}, dir: modelDir };
  await mod.default.init?.(ctx);
  modules[spec.name] = { mod: mod.default, ctx };
}

/** Runs a function stage on each env; returns the new envs (several per input for a fan-out stage). */
async function runFunction(name: string, envs: Env[]): Promise<Env[]> {
  const spec = stageSpec(name);
  const { mod, ctx } = modules[name];
  const inputs = ioMap(spec.inputs);
  const outputs = ioMap(spec.outputs);
  const out: Env[] = [];
  for (const env of envs) {
    const item: Item = Object.fromEntries(Object.entries(inputs).map(([local, tensor]) => [local, env[tensor]]));
    const t0 = performance.now();
    const result = timed(name, t0, await mod.process(item, ctx));
    const produced = Array.isArray(result) ? result : [result];
    expect(Array.isArray(result)).toBe(spec.fanout === true);
    for (const r of produced) {
      // A stage emits exactly what the manifest says it does.
      expect(Object.keys(r).sort()).toEqual(Object.keys(outputs).sort());
      const next: Env = { ...env };
      for (const [local, tensor] of Object.entries(outputs)) next[tensor] = r[local];
      out.push(next);
    }
  }
  return out;
}

/** Stacks per-item float tensors on a new dim 0, zero-padding the last axis when widths differ (as the engine's pad_axis). */
function stack(parts: Tensor[], padAxis: number | undefined, padValue: number): ort.Tensor {
  const rank = parts[0].shape.length;
  if (padAxis !== undefined && padAxis !== rank - 1) throw new Error('this test helper pads the last axis only');
  const maxLast = Math.max(...parts.map((p) => p.shape[rank - 1]));
  for (const p of parts) {
    const same = p.shape.slice(0, -1).every((d, i) => d === parts[0].shape[i]);
    if (!same || (padAxis === undefined && p.shape[rank - 1] !== maxLast)) throw new Error('items of different shapes in one batch');
  }
  const rows = parts[0].shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(parts.length * rows * maxLast).fill(padValue);
  parts.forEach((p, i) => {
    const w = p.shape[rank - 1];
    const src = p.data as Float32Array;
    for (let r = 0; r < rows; r++) data.set(src.subarray(r * w, (r + 1) * w), (i * rows + r) * maxLast);
  });
  return new ort.Tensor('float32', data, [parts.length, ...parts[0].shape.slice(0, -1), maxLast]);
}

/** Runs an ONNX stage over envs in batches of the manifest's max_size. */
async function runOnnx(name: string, envs: Env[]): Promise<void> {
  const spec = stageSpec(name);
  const inputs = ioMap(spec.inputs);
  const outputs = ioMap(spec.outputs);
  const size = spec.batch?.max_size ?? 1;
  for (let start = 0; start < envs.length; start += size) {
    const chunk = envs.slice(start, start + size);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [modelName, tensor] of Object.entries(inputs)) {
      feeds[modelName] = stack(chunk.map((e) => e[tensor]), spec.batch?.pad_axis, spec.batch?.pad_value ?? 0);
    }
    const t0 = performance.now();
    const result = timed(name, t0, await sessions[name].run(feeds));
    for (const [modelName, tensor] of Object.entries(outputs)) {
      const o = result[modelName];
      const itemShape = o.dims.slice(1).map(Number);
      const per = itemShape.reduce((a, b) => a * b, 1);
      const datatype = o.type === 'int64' ? 'INT64' : 'FP32';
      if (o.type !== 'int64' && o.type !== 'float32') throw new Error(`this test helper reads float32 and int64 outputs, not ${o.type}`);
      const data = o.data as Float32Array | BigInt64Array;
      chunk.forEach((env, i) => { env[tensor] = { datatype, shape: itemShape, data: data.slice(i * per, (i + 1) * per) }; });
    }
  }
}

interface Line { text: string; confidence: number; box: number[] }

async function ocr(image: Uint8Array): Promise<Line[]> {
  const [img] = await runFunction('decode', [{ image: { datatype: 'BYTES', shape: [], data: [image] } }]);
  const [pre] = await runFunction('detect-pre', [img]);
  await runOnnx('detect', [pre]);
  const [post] = await runFunction('detect-post', [pre]);
  let lines = await runFunction('crop', [post]);
  lines = await runFunction('cls-pre', lines);
  await runOnnx('classify', lines);
  lines = await runFunction('cls-post', lines);
  lines = await runFunction('rec-pre', lines);
  await runOnnx('recognize', lines);
  for (const l of lines) recognised.push({ rec_input: l.rec_input, rec_best: l.rec_best });
  lines = await runFunction('ctc-decode', lines);
  lines = await runFunction('filter-lines', lines);
  const dec = new TextDecoder();
  return lines.map((l) => ({
    text: dec.decode((l.text.data as Uint8Array[])[0]),
    confidence: (l.confidence.data as Float32Array)[0],
    box: Array.from(l.box.data as Float32Array),
  }));
}

// ---- test images ----

/** A PNG whose header claims width x height, with almost no pixel data behind it. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

// ---- tests ----

beforeAll(async () => {
  await buildIfNeeded(await loadManifest(manifestFile)); // the recogniser with its greedy head (models/ocr/build.ts)
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  for (const s of manifest.stages) {
    if (s.kind === 'onnx') sessions[s.name] = await ort.InferenceSession.create(resolve(modelDir, s.weights!.source), opts);
    else await loadFunctionStage(s);
  }
});

afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
});

describe('OCR stages on the PP-OCRv4 models', () => {
  it('reads rendered text (fonts, sizes, weights, colours, PNG and JPEG) in reading order', async () => {
    const specs = ocrSampleSpecs(24);
    for (const k of Object.keys(timings)) delete timings[k];
    let edits = 0, chars = 0, strictEdits = 0, strictChars = 0;
    const worst: string[] = [];
    for (const spec of specs) {
      const lines = await ocr(await renderTextImage(spec));
      const score = scoreLines(spec, lines);
      edits += score.edits; chars += score.chars;
      strictEdits += editDistance(spec.lines.join('\n'), lines.map((l) => l.text).join('\n'));
      strictChars += spec.lines.join('\n').length;
      if (score.edits > 0) worst.push(`${spec.font} ${spec.size}px ${spec.weight} ${spec.format}: ${JSON.stringify(score.expected)} -> ${JSON.stringify(score.actual)}`);
      expectReadingOrder(spec, lines);
    }
    const cer = edits / chars;
    console.log(`OCR over ${specs.length} images, ${chars} characters: CER ${(100 * cer).toFixed(2)}% `
      + `(lines joined with '\\n', split lines counted as errors: ${(100 * strictEdits / strictChars).toFixed(2)}%)\n  `
      + worst.join('\n  '));
    console.log('per-stage time per image (ms): ' + Object.entries(timings).map(([k, v]) => `${k} ${(v / specs.length).toFixed(1)}`).join(', '));
    expect(cer).toBeLessThanOrEqual(0.03);
  });

  it('reads with the greedy head exactly what the softmax of the shipped recogniser gives', async () => {
    expect(recognised.length).toBeGreaterThanOrEqual(24);
    const plain = await ort.InferenceSession.create(recogniserPath(), { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const charset = loadCharset(resolveAsset(stageSpec('ctc-decode').options!.dictionary as string, modelDir), true);
    try {
      for (const l of recognised) {
        const x = l.rec_input;
        const out = (await plain.run({ x: new ort.Tensor('float32', x.data as Float32Array, [1, ...x.shape]) }))[plain.outputNames[0]];
        const steps = Number(out.dims[1]);
        const fromSoftmax = ctcGreedyDecode(out.data as Float32Array, steps, charset);
        expect(l.rec_best.shape).toEqual([steps, 2]);
        const fromHead = ctcGreedyDecodeBest(l.rec_best.data as Float32Array, steps, charset);
        expect(fromHead.text).toBe(fromSoftmax.text);
        expect(fromHead.confidence).toBeCloseTo(fromSoftmax.confidence, 6);
      }
    } finally {
      await plain.release();
    }
  });

  it('reads a page of 30 lines that detection sees downscaled', async () => {
    const words = WORDS.slice(0, 20);
    const lines = Array.from({ length: 30 }, (_, i) => `${Array.from({ length: 9 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ')} ${1000 + i * 37}`);
    const page = await renderTextImage({ lines, size: 22, width: 1400, format: 'jpeg' });
    const got = await ocr(page);
    const [img] = await runFunction('decode', [{ image: { datatype: 'BYTES', shape: [], data: [page] } }]);
    const [pre] = await runFunction('detect-pre', [img]);
    expect(Math.max(...pre.det_input.shape)).toBe(960); // 1400 px wide: shrunk for detection
    expect(got).toHaveLength(30);
    const actual = got.map((l) => l.text).join(' ').replace(/\s+/g, ' ').trim();
    const cer = editDistance(lines.join(' '), actual) / lines.join(' ').length;
    console.log(`30-line page: CER ${(100 * cer).toFixed(2)}%`);
    expect(cer).toBeLessThanOrEqual(0.03);
    // Boxes come back in page pixels: the last line's box sits near the bottom of the 1400-px-wide page.
    const layout = textLayout({ lines, size: 22, width: 1400 });
    const lastTop = Math.min(got[29].box[1], got[29].box[3]);
    expect(Math.abs(lastTop - (layout.padding + 29 * layout.pitch))).toBeLessThan(layout.pitch / 2);
  });

  it('finds no lines in a blank image', async () => {
    const blank = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#ffffff' } }).png().toBuffer();
    expect(await ocr(blank)).toEqual([]);
    const [img] = await runFunction('decode', [{ image: { datatype: 'BYTES', shape: [], data: [blank] } }]);
    const [pre] = await runFunction('detect-pre', [img]);
    await runOnnx('detect', [pre]);
    const [post] = await runFunction('detect-post', [pre]);
    expect(post.boxes.shape).toEqual([0, 4, 2]);
  });

  it('turns an upside-down line the right way up', async () => {
    const png = await renderTextImage({ lines: ['Upside down 2024'], size: 36 });
    const flipped = await sharp(png).rotate(180).png().toBuffer();
    const lines = await ocr(flipped);
    expect(lines.map((l) => l.text)).toEqual(['Upside down 2024']);
  });

  it('returns boxes in source pixels around the text', async () => {
    const png = await renderTextImage({ lines: ['first line', 'second line'], size: 30, padding: 40 });
    const { width, height } = await sharp(png).metadata();
    const lines = await ocr(png);
    expect(lines.map((l) => l.text)).toEqual(['first line', 'second line']);
    for (const l of lines) {
      const xs = [l.box[0], l.box[2], l.box[4], l.box[6]], ys = [l.box[1], l.box[3], l.box[5], l.box[7]];
      expect(Math.min(...xs)).toBeGreaterThan(20);
      expect(Math.min(...xs)).toBeLessThan(45);
      expect(Math.max(...xs)).toBeLessThan(width!);
      expect(Math.max(...ys)).toBeLessThan(height!);
      expect(l.confidence).toBeGreaterThan(0.9);
    }
    expect(lines[0].box[1]).toBeLessThan(lines[1].box[1]); // top-left y
  });

  it('reads WebP too', async () => {
    const webp = await sharp(await renderTextImage({ lines: ['WebP 42'], size: 32 })).webp({ quality: 90 }).toBuffer();
    expect((await ocr(webp)).map((l) => l.text)).toEqual(['WebP 42']);
  });

  it('applies EXIF orientation and flattens transparency onto white', async () => {
    // Pixels stored a quarter turn counter-clockwise, tagged "rotate 90° clockwise to display".
    const upright = await sharp({ create: { width: 120, height: 40, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const stored = await sharp(upright).rotate(-90).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const [a] = await runFunction('decode', [{ image: { datatype: 'BYTES', shape: [], data: [stored] } }]);
    expect(a.rgb.shape).toEqual([40, 120, 3]);

    const clear = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const [b] = await runFunction('decode', [{ image: { datatype: 'BYTES', shape: [], data: [clear] } }]);
    expect(b.rgb.shape).toEqual([8, 8, 3]);
    expect(Array.from(b.rgb.data as Uint8Array).every((v) => v === 255)).toBe(true);
  });

  it('rejects what is not a PNG, JPEG or WebP image with 400', async () => {
    const { mod, ctx } = modules.decode;
    const call = (bytes: Uint8Array) => mod.process({ image: { datatype: 'BYTES', shape: [], data: [bytes] } }, ctx);
    for (const bad of [
      Buffer.from('definitely not an image'),
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
      await sharp({ create: { width: 10, height: 10, channels: 3, background: '#000' } }).gif().toBuffer(),
    ]) {
      const err = await Promise.resolve().then(() => call(bad)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).code).toBe('invalid_input');
      expect((err as Error).message).toBe('image: not a PNG, JPEG or WebP image');
    }
    // A real PNG cut short: the header is fine, the pixels are not.
    const png = await renderTextImage({ lines: ['truncated'] });
    const err = await Promise.resolve().then(() => call(png.subarray(0, Math.floor(png.length / 2)))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toMatch(/^image: could not decode the PNG data/);
  });

  it('rejects images over the pixel limit before decoding them', async () => {
    const { mod, ctx } = modules.decode;
    const call = (bytes: Uint8Array, options = ctx.options) => mod.process({ image: { datatype: 'BYTES', shape: [], data: [bytes] } }, { ...ctx, options });
    const huge = pngHeaderOnly(9000, 9000);
    await expect(Promise.resolve().then(() => call(huge))).rejects.toThrow(new BadRequestError('image: 9000 x 9000 = 81000000 pixels is over max_pixels 40000000'));
    // Past sharp's own limit (0x3FFF squared pixels) too: the answer still names both numbers.
    const past = pngHeaderOnly(20000, 20000);
    await expect(Promise.resolve().then(() => call(past))).rejects.toThrow(new BadRequestError('image: 20000 x 20000 = 400000000 pixels is over max_pixels 40000000'));
    const small = await renderTextImage({ lines: ['small'] });
    await expect(Promise.resolve().then(() => call(small, { max_pixels: 1000 }))).rejects.toBeInstanceOf(BadRequestError);
  });
});

describe('models/ocr/build.ts', () => {
  it('builds the recogniser with its greedy head to the same bytes every time, with the sha256 pipeline.yaml pins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ensemble-ocr-build-'));
    try {
      const a = await buildGreedyRecogniser(dir);
      const b = await buildGreedyRecogniser(dir);
      expect(b.sha256).toBe(a.sha256);
      expect(createHash('sha256').update(readFileSync(a.file)).digest('hex')).toBe(a.sha256);
      expect(a.sha256).toBe(stageSpec('recognize').weights!.sha256);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('OCR geometry and decoding helpers', () => {
  it('crops an upright box to the pixels the general perspective warp gives, and still warps a tilted one', () => {
    const src = { width: 97, height: 41, data: Uint8Array.from({ length: 97 * 41 * 3 }, (_, i) => (i * 37 + (i >> 5) * 11) & 255) };
    // Fractional corners, a box past the image's edge (replicated border) and one scaled down and up.
    const boxes: [number, number, number, number][] = [[3.25, 2.5, 80.75, 30.125], [-4.5, -3, 99.5, 44], [10.1, 5.3, 30.7, 38.9]];
    for (const [x0, y0, x1, y1] of boxes) {
      const quad: Quad = [{ x: x0, y: y0 }, { x: x1, y: y0 }, { x: x1, y: y1 }, { x: x0, y: y1 }];
      for (const [w, h] of [[Math.trunc(x1 - x0), Math.trunc(y1 - y0)], [25, 60]]) {
        const rect = [{ x: 0, y: 0 }, { x: w, y: 0 }, { x: w, y: h }, { x: 0, y: h }];
        const general = warpPerspective(src, perspectiveTransform(rect, quad), w, h);
        const got = warpQuad(src, quad, w, h);
        expect({ width: got.width, height: got.height }).toEqual({ width: w, height: h });
        expect(Buffer.from(got.data).equals(Buffer.from(general.data))).toBe(true);
      }
    }
    const tilted: Quad = [{ x: 5, y: 8 }, { x: 90, y: 2 }, { x: 92, y: 30 }, { x: 7, y: 36 }];
    const rect = [{ x: 0, y: 0 }, { x: 85, y: 0 }, { x: 85, y: 28 }, { x: 0, y: 28 }];
    expect(Buffer.from(warpQuad(src, tilted, 85, 28).data).equals(Buffer.from(warpPerspective(src, perspectiveTransform(rect, tilted), 85, 28).data))).toBe(true);
  });

  it('fits the minimum-area rectangle of a rotated rectangle', () => {
    // Corners of a 40 x 10 rectangle rotated by 30 degrees about (50, 50).
    const a = Math.PI / 6, pts: number[] = [];
    for (const [u, v] of [[-20, -5], [20, -5], [20, 5], [-20, 5]]) pts.push(50 + u * Math.cos(a) - v * Math.sin(a), 50 + u * Math.sin(a) + v * Math.cos(a));
    const r = minAreaRect(convexHull(pts));
    expect([r.width, r.height].sort((x, y) => x - y).map((x) => +x.toFixed(6))).toEqual([10, 40]);
    expect(r.cx).toBeCloseTo(50, 6);
    expect(r.cy).toBeCloseTo(50, 6);
  });

  it('orders boxes top to bottom, and left to right within a line', () => {
    const box = (x: number, y: number) => ({ quad: [{ x, y }, { x: x + 10, y }, { x: x + 10, y: y + 5 }, { x, y: y + 5 }], id: `${x},${y}` });
    const sorted = sortReadingOrder([box(200, 52), box(10, 100), box(10, 50), box(100, 45)]);
    expect(sorted.map((b) => b.id)).toEqual(['10,50', '100,45', '200,52', '10,100']);
  });

  it('collapses repeats and drops blanks in greedy CTC decoding', () => {
    const charset = ['', 'a', 'b', ' '];
    const steps = [1, 1, 0, 1, 2, 2, 3, 0]; // a a _ a b b ' ' _
    const probs = new Float32Array(steps.length * 4);
    steps.forEach((c, t) => { probs[t * 4 + c] = c === 2 ? 0.6 : 0.9; probs[t * 4 + ((c + 1) % 4)] = 0.05; });
    const d = ctcGreedyDecode(probs, steps.length, charset);
    expect(d.text).toBe('aab ');
    expect(d.confidence).toBeCloseTo((0.9 + 0.9 + 0.6 + 0.9) / 4, 6);
    expect(ctcGreedyDecode(new Float32Array(8).fill(0).map((_, i) => (i % 4 === 0 ? 1 : 0)), 2, charset)).toEqual({ text: '', confidence: 0 });
  });

  it('decodes the greedy head\'s best classes and probabilities the same way', () => {
    const charset = ['', 'a', 'b', ' '];
    const steps = [1, 1, 0, 1, 2, 2, 3, 0];
    const prob = [0.9, 0.8, 0.7, 0.9, 0.6, 0.5, 0.9, 0.99];
    const d = ctcGreedyDecodeBest(Float32Array.from(steps.flatMap((c, t) => [c, prob[t]])), steps.length, charset);
    expect(d.text).toBe('aab ');
    expect(d.confidence).toBeCloseTo((0.9 + 0.9 + 0.6 + 0.9) / 4, 6);
    expect(ctcGreedyDecodeBest(new Float32Array(6), 3, charset)).toEqual({ text: '', confidence: 0 });
    expect(() => ctcGreedyDecodeBest(Float32Array.from([4, 0.5]), 1, charset)).toThrow(/class 4/);
  });
});
