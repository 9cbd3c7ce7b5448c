import { join } from 'node:path';
import { findManifests, loadManifest } from '../../manifest/load.js';
import type { Manifest } from '../../manifest/types.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { editDistance } from '../../../../../test/helpers/render.js';
import { startBenchServer } from '../bench-server.js';
import { runLoadInChild } from '../load.js';
import { normalizeText, ocrSamples, type OcrSample } from '../ocr-images.js';
import { createSequentialRunner } from '../sequential.js';
import { summarize } from '../stats.js';
import type { BenchRow, BenchSettings, LoadResult, ScenarioResult, TargetCheck } from '../types.js';
import { failureNote, fmt, loadRow, ratio, withTempDir } from '../util.js';

export const OCR_CONCURRENCY = [1, 4, 16];
const SCENARIO = 'ocr';

interface Sequential { latencies: number[]; totalMs: number; texts: string[][] }

/** Character error rate over the whole set: total edit distance over total expected characters. */
export function setCer(samples: OcrSample[], texts: string[][]): number {
  let dist = 0;
  let chars = 0;
  samples.forEach((s, i) => {
    const want = normalizeText(s.lines);
    dist += editDistance(want, normalizeText(texts[i] ?? []));
    chars += Array.from(want).length;
  });
  return chars ? dist / chars : 0;
}

async function timeSequential(samples: OcrSample[], passes: number, run: (png: Buffer) => Promise<string[]>): Promise<Sequential> {
  const latencies: number[] = [];
  const texts: string[][] = [];
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    for (const [i, s] of samples.entries()) {
      const start = performance.now();
      const lines = await run(s.png);
      latencies.push(performance.now() - start);
      if (p === 0) texts[i] = lines;
    }
  }
  return { latencies, totalMs: performance.now() - t0, texts };
}

function sequentialRow(system: string, r: Sequential, cer: number, note?: string): BenchRow {
  const s = summarize(r.latencies);
  const row: BenchRow = {
    scenario: SCENARIO, system, concurrency: 1, throughput: (r.latencies.length * 1000) / r.totalMs, unit: 'images/s',
    p50Ms: s.p50, p99Ms: s.p99, samples: r.latencies.length, failed: 0, cer,
  };
  if (note) row.note = note;
  return row;
}

async function ocrManifest(root: string): Promise<Manifest | undefined> {
  for (const f of await findManifests(join(root, 'models'))) {
    const m = await loadManifest(f);
    if (m.name === 'ocr') return m;
  }
  return undefined;
}

/**
 * OCR on a fixed set of rendered pages: Ensemble's ocr pipeline through the
 * gateway at several concurrencies, against (a) the same stages run one after
 * another in one process and (b) @gutenye/ocr-node on the same PP-OCRv4
 * models, both sequential; character error rate of each on the same pages.
 */
export async function runOcrScenario(s: BenchSettings): Promise<ScenarioResult> {
  const manifest = await ocrManifest(s.root);
  if (!manifest) throw new Error('no models/ocr pipeline: the OCR scenario needs it');
  await buildIfNeeded(manifest, s.log);
  const samples = await ocrSamples(s.quick ? 6 : 12);
  const passes = s.quick ? 1 : 2;
  const perLevel = s.quick ? { 1: 6, 4: 12, 16: 16 } as Record<number, number> : { 1: 24, 4: 48, 16: 64 } as Record<number, number>;
  const capMs = s.quick ? 20_000 : 60_000;
  const rows: BenchRow[] = [];

  // (b) the peer library, sequential.
  s.log('ocr: @gutenye/ocr-node, sequential');
  const { default: Ocr } = await import('@gutenye/ocr-node');
  const peer = await Ocr.create();
  // Its detect() takes a path or anything sharp opens, a Buffer included.
  const peerRun = async (png: Buffer) => ((await peer.detect(png as unknown as string)) as { text: string }[]).map((l) => l.text);
  await peerRun(samples[0].png);
  const peerRes = await timeSequential(samples, passes, peerRun);
  const peerCer = setCer(samples, peerRes.texts);

  // (a) the same stages, one process, one item at a time.
  s.log('ocr: same stages, sequential in one process');
  const seq = await createSequentialRunner(manifest);
  let seqRes: Sequential;
  try {
    const seqRun = async (png: Buffer) => {
      const out = await seq.run({ image: { datatype: 'BYTES', shape: [1], data: [new Uint8Array(png)] } });
      return (out.text.data as Uint8Array[]).map((b) => Buffer.from(b).toString('utf8'));
    };
    await seqRun(samples[0].png);
    seqRes = await timeSequential(samples, passes, seqRun);
  } finally {
    await seq.close();
  }
  const seqCer = setCer(samples, seqRes.texts);

  // Ensemble through the gateway.
  const loads: LoadResult[] = [];
  let ensCer = NaN;
  await withTempDir('ensemble-bench-ocr-', async (dataDir) => {
    const server = await startBenchServer({ dataDir, modelsDir: join(s.root, 'models'), pipelines: ['ocr'], log: () => undefined });
    try {
      const url = `${server.url}/v2/models/ocr/infer`;
      const texts: string[][] = [];
      for (const [i, smp] of samples.entries()) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'image/png' }, body: smp.png });
        const body = (await res.json()) as { outputs?: { name: string; data: string[] }[]; error?: string };
        if (!res.ok) throw new Error(`ocr request failed: HTTP ${res.status} ${body.error ?? ''}`);
        texts[i] = body.outputs?.find((o) => o.name === 'text')?.data ?? [];
      }
      ensCer = setCer(samples, texts);
      const requests = samples.map((smp) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(smp.png) }));
      for (const c of OCR_CONCURRENCY) {
        const r = await runLoadInChild({ url: server.url, requests, concurrency: c, maxRequests: perLevel[c], maxDurationMs: capMs, warmupRequests: c, requestTimeoutMs: 120_000 });
        s.log(`ocr c=${c} ensemble: ${fmt(r.throughput)} images/s p50 ${fmt(r.latency.p50)} ms p99 ${fmt(r.latency.p99)} ms`);
        loads.push(r);
      }
    } finally {
      await server.close();
    }
  });

  rows.push(sequentialRow('@gutenye/ocr-node (sequential)', peerRes, peerCer));
  rows.push(sequentialRow('same stages, sequential, one process', seqRes, seqCer));
  for (const r of loads) {
    const row = loadRow(SCENARIO, 'ensemble (gateway)', 'images/s', r, failureNote(r));
    row.cer = ensCer;
    rows.push(row);
  }
  const peerTput = rows[0].throughput;
  const peerP50 = rows[0].p50Ms;
  const c16 = loads.find((r) => r.concurrency === 16)!;
  const c1 = loads.find((r) => r.concurrency === 1)!;
  const targets: TargetCheck[] = [
    { target: 'OCR at concurrency 16: >= 2x the images/s of @gutenye/ocr-node sequential', measured: `${fmt(c16.throughput)} vs ${fmt(peerTput)} images/s = ${fmt(ratio(c16.throughput, peerTput))}x`, met: ratio(c16.throughput, peerTput) >= 2 },
    { target: 'OCR character error rate no worse than the peer\'s', measured: `${fmt(ensCer * 100)}% vs ${fmt(peerCer * 100)}%`, met: ensCer <= peerCer },
    { target: 'OCR at concurrency 1: p50 <= 0.6x the peer\'s', measured: `${fmt(c1.latency.p50)} vs ${fmt(peerP50)} ms = ${fmt(ratio(c1.latency.p50, peerP50))}x`, met: ratio(c1.latency.p50, peerP50) <= 0.6 },
  ];
  return {
    name: SCENARIO,
    title: 'OCR (PP-OCRv4 det + cls + rec)',
    rows,
    targets,
    notes: [
      `${samples.length} rendered pages (1 to 4 lines each, DejaVu Sans / Serif / Mono, 24 to 36 px), the same bytes for every system. `
      + `Sequential systems: ${passes} pass(es) over the set after one warm-up image; ONNX Runtime's default of one intra-op thread per core. `
      + `Ensemble: raw PNG bodies to /v2/models/ocr/infer from a load generator process; requests per level ${OCR_CONCURRENCY.map((c) => `c=${c}: ${perLevel[c]}`).join(', ')}.`,
      'Character error rate: edit distance over all pages / expected characters, whitespace collapsed (a line break and a space between two boxes count the same). '
      + '@gutenye/ocr-node does not run the direction classifier and pre-processes differently (no ImageNet normalisation, its own box expansion); the ensemble pipeline follows PaddleOCR\'s.',
    ],
  };
}
