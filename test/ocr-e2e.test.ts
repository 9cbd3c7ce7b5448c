/**
 * OCR end to end through the real gateway: the server `npm start` runs, with
 * weights pushed to s3rver, run records in dynalite, and stages in worker
 * processes, on images rendered here with known text.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import type { InferResponseJson } from '../packages/core/src/tensor/protocol.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { renderTextImage } from '../packages/tools/src/bench/render.js';
import { inferTensors } from './helpers/http.js';
import { runCli } from './helpers/cli.js';
import { expectReadingOrder, ocrSampleSpecs, scoreLines, type OcrLine } from './helpers/ocr-samples.js';

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-ocr-e2e-'));
  server = await startServer({ port: 0, dataDir: join(dir, 'data'), pipelines: ['ocr'], log: () => undefined });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function postImage(body: Uint8Array, type: string): Promise<{ status: number; json: InferResponseJson & { error?: string }; runId: string | null }> {
  const res = await fetch(`${server.url}/v2/models/ocr/infer`, { method: 'POST', body, headers: { 'content-type': type } });
  return { status: res.status, json: (await res.json()) as InferResponseJson & { error?: string }, runId: res.headers.get('x-ensemble-run-id') };
}

function linesOf(r: InferResponseJson): OcrLine[] {
  const out = Object.fromEntries(r.outputs.map((o) => [o.name, o]));
  const text = out.text.data as string[];
  const conf = out.confidence.data as number[];
  const box = out.box.data as number[];
  expect(out.box.shape).toEqual([text.length, 4, 2]);
  return text.map((t, i) => ({ text: t, confidence: conf[i], box: box.slice(i * 8, i * 8 + 8) }));
}

describe('OCR through the gateway', () => {
  it('reads 24 rendered images (raw bodies, 4 at a time) with CER <= 3% and lines in reading order', async () => {
    const specs = ocrSampleSpecs(24);
    const images = await Promise.all(specs.map((s) => renderTextImage(s)));
    const results: OcrLine[][] = new Array(specs.length);
    for (let i = 0; i < specs.length; i += 4) {
      await Promise.all(specs.slice(i, i + 4).map(async (spec, j) => {
        const r = await postImage(images[i + j], spec.format === 'jpeg' ? 'image/jpeg' : 'image/png');
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        results[i + j] = linesOf(r.json);
      }));
    }
    let edits = 0;
    let chars = 0;
    specs.forEach((spec, i) => {
      const s = scoreLines(spec, results[i]);
      edits += s.edits;
      chars += s.chars;
      expectReadingOrder(spec, results[i]);
      for (const l of results[i]) expect(l.confidence).toBeGreaterThan(0.5);
    });
    expect(edits / chars).toBeLessThanOrEqual(0.03);
  });

  it('takes the image as a BYTES tensor through the standard infer request (binary data extension)', async () => {
    const png = await renderTextImage({ lines: ['Binary tensor 2048', 'second line'], size: 32 });
    const r = await inferTensors(server.url, 'ocr', { image: { datatype: 'BYTES', shape: [1], data: [png] } }, { binary: true });
    expect(Array.from(r.tensors.text.data as Uint8Array[], (b) => new TextDecoder().decode(b))).toEqual(['Binary tensor 2048', 'second line']);
  });

  it('says which image each line came from when one request carries several (image_index)', async () => {
    const first = await renderTextImage({ lines: ['First page here', 'another line'], size: 32 });
    const second = await renderTextImage({ lines: ['Second page'], size: 32 });
    const r = await inferTensors(server.url, 'ocr', { image: { datatype: 'BYTES', shape: [2], data: [first, second] } }, { binary: true });
    const text = Array.from(r.tensors.text.data as Uint8Array[], (b) => new TextDecoder().decode(b));
    expect(text).toEqual(['First page here', 'another line', 'Second page']);
    expect(r.tensors.image_index.datatype).toBe('INT64');
    expect(Array.from(r.tensors.image_index.data as BigInt64Array, Number)).toEqual([0, 0, 1]);
  });

  it('`ensemble infer ocr --image` prints the lines in reading order', async () => {
    const file = join(dir, 'photo.jpg');
    await writeFile(file, await renderTextImage({ lines: ['Invoice 4711', 'total amount due'], size: 34, format: 'jpeg' }));
    const r = await runCli(['infer', 'ocr', '--image', file, '--url', server.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.split('\t')[0])).toEqual(['Invoice 4711', 'total amount due']);
  });

  it('a blank image gives no lines, with empty but well-shaped outputs', async () => {
    const blank = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#ffffff' } }).png().toBuffer();
    const r = await postImage(blank, 'image/png');
    expect(r.status).toBe(200);
    const out = Object.fromEntries(r.json.outputs.map((o) => [o.name, o]));
    expect(out.text.shape).toEqual([0]);
    expect(out.box.shape).toEqual([0, 4, 2]);
  });

  it('a corrupt file gets 400 naming the problem, and its run record says it failed', async () => {
    const png = await renderTextImage({ lines: ['broken'] });
    const r = await postImage(png.subarray(0, 60), 'image/png');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/stage 'decode'.*image/);
    await server.env.runs.flush();
    const rec = (await (await fetch(`${server.url}/v2/runs/${r.runId}`)).json()) as RunRecord;
    expect(rec).toMatchObject({ pipeline: 'ocr', status: 'failed', httpStatus: 400 });
    expect(rec.stages.find((s) => s.stage === 'decode')?.error).toMatch(/image/);
  });
});
