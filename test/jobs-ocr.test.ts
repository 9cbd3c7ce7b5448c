/**
 * An OCR batch job end to end: 200 rendered text images uploaded under one
 * prefix, submitted as `inputs.prefix`, run through the real PP-OCRv4
 * pipeline by the queue consumer; every image gets one result line, read
 * within the tolerance the synchronous OCR test holds the endpoint to.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { renderTextImage } from '../packages/tools/src/bench/render.js';
import { ocrSampleSpecs, scoreLines } from './helpers/ocr-samples.js';
import { jobResults, submitJob, waitForJob } from './helpers/jobs.js';

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-jobs-ocr-'));
  server = await startServer({ port: 0, dataDir: join(dir, 'data'), pipelines: ['ocr'], env: {}, log: () => undefined });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('an OCR batch job', () => {
  it('reads 200 rendered images submitted as a prefix: one result line each, CER <= 3%', async () => {
    const n = 200;
    const specs = ocrSampleSpecs(n);
    const keys = specs.map((s, i) => `scans/${String(i).padStart(4, '0')}.${s.format === 'jpeg' ? 'jpg' : 'png'}`);
    for (let i = 0; i < n; i += 10) {
      await Promise.all(specs.slice(i, i + 10).map(async (spec, j) => {
        const body = await renderTextImage(spec);
        await server.env.s3.send(new PutObjectCommand({ Bucket: server.env.settings.bucket, Key: keys[i + j], Body: body }));
      }));
    }
    const sub = await submitJob(server.url, 'ocr', { inputs: { prefix: 'scans/' }, output: { prefix: 'scans/results/' } });
    expect(sub.status, JSON.stringify(sub.json)).toBe(202);
    expect(sub.json.counts.total).toBe(n);
    const done = await waitForJob(server.url, sub.json.id, undefined, 280_000);
    expect(done).toMatchObject({ state: 'succeeded', counts: { total: n, succeeded: n, failed: 0, running: 0 } });

    const lines = await jobResults(server.url, sub.json.id);
    expect(lines.map((l) => l.key)).toEqual([...keys].sort());
    let edits = 0;
    let chars = 0;
    for (const line of lines) {
      expect('outputs' in line, JSON.stringify(line)).toBe(true);
      if (!('outputs' in line)) continue;
      const text = (line.outputs as { name: string; data: string[] }[]).find((o) => o.name === 'text')!.data;
      const score = scoreLines(specs[keys.indexOf(line.key)], text.map((t) => ({ text: t, confidence: 1, box: [] })));
      edits += score.edits;
      chars += score.chars;
    }
    expect(edits / chars).toBeLessThanOrEqual(0.03);
  }, 300_000);
});
