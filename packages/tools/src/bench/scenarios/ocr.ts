import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { editDistance } from '../render.js';
import { startBenchServer } from '../bench-server.js';
import { runLoadInChild } from '../load.js';
import { normalizeText, ocrSamples, type OcrSample } from '../ocr-images.js';
import { createSequentialRunner } from '../sequential.js';
import { summarize } from '../stats.js';
import type { BenchRow, BenchSettings, LoadResult, ScenarioResult, TargetCheck } from '../types.js';
import { cpuSnapshot, failureNote, fmt, loadRow, ratio, withTempDir } from '../util.js';
import { per1000Note } from '../energy.js';
import { WorkerPoolTransport, poolPlacement } from '@ensemble/core/transport/worker-pool.js';
import { gatewayView } from '@ensemble/core/placement/placement.js';
import type { RunRecord } from '@ensemble/core/storage/types.js';

export const OCR_CONCURRENCY = [1, 4, 16];
const SCENARIO = 'ocr';

interface Sequential { latencies: number[]; totalMs: number; texts: string[][]; cpuMsPerImage: number }

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
  const cpu = cpuSnapshot({});
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) {
    for (const [i, s] of samples.entries()) {
      const start = performance.now();
      const lines = await run(s.png);
      latencies.push(performance.now() - start);
      if (p === 0) texts[i] = lines;
    }
  }
  const totalMs = performance.now() - t0;
  return { latencies, totalMs, texts, cpuMsPerImage: cpu().self / latencies.length };
}

function sequentialRow(system: string, r: Sequential, cer: number): BenchRow {
  const s = summarize(r.latencies);
  return {
    scenario: SCENARIO, system, concurrency: 1, throughput: (r.latencies.length * 1000) / r.totalMs, unit: 'images/s',
    p50Ms: s.p50, p99Ms: s.p99, samples: r.latencies.length, failed: 0, cer, note: `CPU ${fmt(r.cpuMsPerImage)} ms/image; ${per1000Note(r.cpuMsPerImage, 'images')}`,
  };
}

/**
 * CPU per image at one level (ms): the gateway process and each stage's
 * worker processes (from /proc), and session.run's own CPU per ONNX stage
 * (the workers' measure of their process while it ran; an inline stage's
 * wall time on the gateway's thread).
 */
interface EnsembleCpu { gateway: number; stages: Record<string, number>; sessionRun: Record<string, number>; inline: string[] }

/** The pages a system did not read exactly, with what it read: where a CER comes from. */
function misreadNote(samples: OcrSample[], texts: Record<string, string[][]>): string {
  const parts: string[] = [];
  for (const [system, t] of Object.entries(texts)) {
    const wrong = samples.flatMap((smp, i) => {
      const want = normalizeText(smp.lines);
      const got = normalizeText(t[i] ?? []);
      return got === want ? [] : [`${smp.name} "${got}" for "${want}"`];
    });
    parts.push(`${system}: ${wrong.length ? wrong.join('; ') : 'every page exact'}`);
  }
  return `Pages not read exactly (whitespace collapsed) — ${parts.join('. ')}.`;
}

/** Mean per-image time in each stage from run records. */
function stageBreakdown(records: RunRecord[]): string {
  const by = new Map<string, { compute: number; wait: number; items: number }>();
  for (const rec of records) {
    for (const st of rec.stages) {
      const a = by.get(st.stage) ?? { compute: 0, wait: 0, items: 0 };
      a.compute += st.computeMs;
      a.wait += st.queueWaitMs;
      a.items += st.items;
      by.set(st.stage, a);
    }
  }
  const n = Math.max(1, records.length);
  return [...by].map(([k, a]) => `${k} ${fmt(a.compute / n)} ms${a.items / n > 1.05 ? ` for ${fmt(a.items / n, 1)} items` : ''}${a.wait / n >= 1 ? ` (+${fmt(a.wait / n)} waiting)` : ''}`).join(', ');
}

function totalCpu(c: EnsembleCpu): number {
  return c.gateway + Object.values(c.stages).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** session.run's CPU per image over every ONNX stage. */
function sessionRunCpu(c: EnsembleCpu): number { return sum(Object.values(c.sessionRun)); }

/** The most images/s the cores allow if they did nothing but session.run. */
function computeBound(c: EnsembleCpu): number { return (availableParallelism() * 1000) / sessionRunCpu(c); }

/**
 * The function stages' own CPU per image (from the sequential runs): those
 * the gateway runs, and those the worker pool runs in its workers beside
 * the model (poolPlacement).
 */
interface FunctionCpu { gateway: number; workers: number }

/**
 * What is not model compute, per image: the gateway's CPU less the function
 * stages' own work there and the inline stages' session.run, plus the
 * workers' CPU outside session.run less the co-located stages' own work.
 */
function overheadSplit(c: EnsembleCpu, fn: FunctionCpu): { gateway: number; workers: number; total: number; share: number } {
  const inlineRun = sum(c.inline.map((st) => c.sessionRun[st] ?? 0));
  const gateway = c.gateway - (Number.isFinite(fn.gateway) ? fn.gateway : 0) - inlineRun;
  const workers = sum(Object.entries(c.stages).map(([st, v]) => v - (c.sessionRun[st] ?? 0))) - (Number.isFinite(fn.workers) ? fn.workers : 0);
  const total = totalCpu(c);
  return { gateway, workers, total, share: (gateway + workers) / total };
}

/** Where the CPU goes per image, and what that allows on this machine's cores. */
function cpuAnalysis(c: EnsembleCpu, peer: Sequential, seq: Sequential, peerTput: number, level: number, fn: FunctionCpu, moved: string[]): string {
  const cores = availableParallelism();
  const total = totalCpu(c);
  const bound = (cores * 1000) / total;
  const parts = Object.entries(c.stages).filter(([, v]) => Number.isFinite(v)).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
  return `CPU per image (user + system of every process involved, from /proc): @gutenye/ocr-node ${fmt(peer.cpuMsPerImage)} ms, the same stages sequential ${fmt(seq.cpuMsPerImage)} ms, `
    + `Ensemble at concurrency ${level} ${fmt(total)} ms (gateway process ${fmt(c.gateway)} ms: HTTP, image decoding, the function stages, copying tensors to and from the workers; stage workers: ${parts || 'not measured'}). `
    + `With ${cores} cores fully busy that allows at most ${fmt(bound)} images/s, ${fmt(ratio(bound, peerTput))}x the peer's measured sequential rate; the peer keeps ${fmt((peer.cpuMsPerImage * peerTput) / 1000)} of the ${cores} cores busy on its own. `
    + (moved.length ? `The workers run ${moved.join(', ')} beside their models (the worker pool's placement), so what crosses the pipe is the pixels and boxes, not the detector's input and probability map. ` : '')
    + (Number.isFinite(fn.gateway)
      ? `Of the gateway's ${fmt(c.gateway)} ms, the function stages it runs take about ${fmt(fn.gateway)} ms of their own work`
        + (moved.length ? ` (and those in the workers ${fmt(fn.workers)} ms)` : '')
        + ' (their CPU per image when the same stages ran one after another on the same pages, with single-threaded sessions); the rest is HTTP, scheduling, garbage collection and copying tensors to and from the worker processes '
        + (moved.length
          ? '(for every page its pixels, and for every text line its crop; the recogniser returns only the best class and its probability per time step, from the ArgMax head models/ocr/build.ts adds).'
          : '(the detector\'s input and probability map, and for every text line the recogniser\'s input; the recogniser returns only the best class and its probability per time step, from the ArgMax head models/ocr/build.ts adds).')
      : '');
}

/** Per level: session.run's CPU per image, the bound it sets, and what is not model compute. */
function computeNote(cpus: EnsembleCpu[], loads: LoadResult[], fn: FunctionCpu): string {
  const cores = availableParallelism();
  const levels = loads.map((r, i) => {
    const c = cpus[i];
    const o = overheadSplit(c, fn);
    const runs = Object.entries(c.sessionRun).map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    return `c=${r.concurrency}: session.run ${fmt(sessionRunCpu(c))} ms (${runs}), bound ${fmt(computeBound(c))} images/s, measured ${fmt(ratio(r.throughput, computeBound(c)))} of it; `
      + `gateway and transfer ${fmt(o.gateway + o.workers)} ms (gateway ${fmt(o.gateway)}, workers outside session.run ${fmt(o.workers)}) = ${fmt(100 * o.share, 1)}% of ${fmt(o.total)} ms`;
  });
  return `Model compute and the rest, per image. The compute bound is ${cores} cores / session.run's CPU per image, measured in the same run: `
    + "each worker times its own process's CPU (every thread) around session.run; an inline stage counts the lesser of its wall time and the gateway's CPU over the call, both at least its own CPU. "
    + "Gateway and transfer: the gateway process's CPU less the own work of the function stages it runs (their CPU per image when the same stages ran one after another, with single-threaded sessions) and the inline session.run, plus the workers' CPU outside session.run less the own work of the function stages they run beside the model (the same measure): reading frames, stacking, writing answers, the pipe's system time. "
    + `${levels.join('. ')}.`;
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

  // (b) the peer library and (a) the same stages in a plain loop, both sequential.
  const { default: Ocr } = await import('@gutenye/ocr-node');
  const peer = await Ocr.create();
  // Its detect() takes a path or anything sharp opens, a Buffer included.
  const peerRun = async (png: Buffer) => ((await peer.detect(png as unknown as string)) as { text: string }[]).map((l) => l.text);
  const seq = await createSequentialRunner(manifest);
  const solo = await createSequentialRunner(manifest, { threads: 1 });
  const seqRun = async (png: Buffer) => {
    const out = await seq.run({ image: { datatype: 'BYTES', shape: [1], data: [new Uint8Array(png)] } });
    return (out.text.data as Uint8Array[]).map((b) => Buffer.from(b).toString('utf8'));
  };
  await peerRun(samples[0].png);
  await seqRun(samples[0].png);
  await solo.run({ image: { datatype: 'BYTES', shape: [1], data: [new Uint8Array(samples[0].png)] } });
  // Measured before and after Ensemble, the better session kept: whatever else the machine does
  // then counts against Ensemble, not against the baselines.
  const peerSessions: Sequential[] = [];
  /** Per image, the function stages' own CPU in each sequential session: those in the gateway, those in the workers. */
  const functionCpu: FunctionCpu[] = [];
  // The function stages the worker pool runs beside their models: those its view of the DAG leaves out.
  const inView = new Set(gatewayView(manifest, poolPlacement(manifest)).stages.map((x) => x.name));
  const moved = manifest.stages.filter((x) => x.kind === 'function' && !inView.has(x.name)).map((x) => x.name);
  const seqSessions: Sequential[] = [];
  const sequentialSession = async () => {
    s.log('ocr: @gutenye/ocr-node, sequential');
    peerSessions.push(await timeSequential(samples, passes, peerRun));
    s.log('ocr: same stages, sequential in one process');
    seqSessions.push(await timeSequential(samples, passes, seqRun));
    // The function stages' own CPU per image, from a runner whose sessions have no intra-op threads:
    // the baseline's spin for a while after each session.run, and that would count as the next stage's.
    const cpu0 = solo.stageCpuMs();
    for (const smp of samples) await solo.run({ image: { datatype: 'BYTES', shape: [1], data: [new Uint8Array(smp.png)] } });
    const cpu1 = solo.stageCpuMs();
    const own = (names: string[]) => names.reduce((a, x) => a + cpu1[x] - cpu0[x], 0) / samples.length;
    const fns = manifest.stages.filter((x) => x.kind === 'function').map((x) => x.name);
    functionCpu.push({ gateway: own(fns.filter((x) => !moved.includes(x))), workers: own(moved) });
  };
  const best = (xs: Sequential[]) => xs.reduce((a, b) => (b.latencies.length / b.totalMs > a.latencies.length / a.totalMs ? b : a));

  // Ensemble through the gateway.
  const loads: LoadResult[] = [];
  const cpus: EnsembleCpu[] = [];
  let stageTimes = '';
  let fn: FunctionCpu = { gateway: NaN, workers: NaN };
  let ensCer = NaN;
  let ensTexts: string[][] = [];
  try {
    await sequentialSession();
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
        ensTexts = texts;
        const requests = samples.map((smp) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(smp.png) }));
        const loaded = server.registry.transportOf('ocr');
        const pids: Record<string, number | undefined> = {};
        const pool = loaded?.transport instanceof WorkerPoolTransport ? loaded.transport : undefined;
        const onnx = manifest.stages.filter((st) => st.kind === 'onnx');
        const inline = onnx.filter((st) => st.scale.isolation === 'inline').map((st) => st.name);
        if (pool && loaded) {
          for (const st of manifest.stages) {
            pool.workersOf(loaded.address, st.name).forEach((w, i) => { pids[`${st.name}#${i}`] = w.pid; });
          }
        }
        // session.run's CPU so far, per ONNX stage, as the workers measured it.
        const runCpu = () => Object.fromEntries(onnx.map((st) => [st.name, (pool && loaded && pool.usage(loaded.address, st.name)?.computeCpuMs) ?? NaN]));
        for (const c of OCR_CONCURRENCY) {
          const base = { url: server.url, requests, concurrency: c, requestTimeoutMs: 120_000 };
          await runLoadInChild({ ...base, maxRequests: c, maxDurationMs: capMs });
          const cpu = cpuSnapshot(pids);
          const run0 = runCpu();
          const r = await runLoadInChild({ ...base, maxRequests: perLevel[c], maxDurationMs: capMs });
          const used = cpu();
          const run1 = runCpu();
          const sessionRun = Object.fromEntries(Object.keys(run1).map((k) => [k, (run1[k] - run0[k]) / Math.max(1, r.ok)]));
          const stages: Record<string, number> = {};
          for (const [k, v] of Object.entries(used.children)) {
            const st = k.replace(/#\d+$/, '');
            stages[st] = (stages[st] ?? 0) + v / Math.max(1, r.ok);
          }
          cpus.push({ gateway: used.self / Math.max(1, r.ok), stages, sessionRun, inline });
          if (c === 1) {
            await server.env.runs.flush();
            const recs = await server.env.runs.listByPipeline('ocr', r.ok);
          stageTimes = stageBreakdown(recs);
          }
          const now = cpus[cpus.length - 1];
          s.log(`ocr c=${c} ensemble: ${fmt(r.throughput)} images/s p50 ${fmt(r.latency.p50)} ms p99 ${fmt(r.latency.p99)} ms, CPU ${fmt(totalCpu(now))} ms/image (session.run ${fmt(sessionRunCpu(now))}), ${fmt(ratio(r.throughput, computeBound(now)))} of the compute bound`);
          loads.push(r);
        }
      } finally {
        await server.close();
      }
    });

    await sequentialSession();
  } finally {
    await seq.close();
    await solo.close();
  }
  const peerRes = best(peerSessions);
  const seqRes = best(seqSessions);
  // CPU, not the run records' wall times: on a busy machine those count the time other processes had the cores.
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  fn = { gateway: mean(functionCpu.map((f) => f.gateway)), workers: mean(functionCpu.map((f) => f.workers)) };
  const peerCer = setCer(samples, peerRes.texts);
  const seqCer = setCer(samples, seqRes.texts);
  rows.push(sequentialRow('@gutenye/ocr-node (sequential)', peerRes, peerCer));
  rows.push(sequentialRow('same stages, sequential, one process', seqRes, seqCer));
  loads.forEach((r, i) => {
    const bound = computeBound(cpus[i]);
    const row = loadRow(SCENARIO, 'ensemble (gateway)', 'images/s', r, [
      failureNote(r), `CPU ${fmt(totalCpu(cpus[i]))} ms/image, of it session.run ${fmt(sessionRunCpu(cpus[i]))} ms`,
      `compute bound ${fmt(bound)} images/s, measured ${fmt(ratio(r.throughput, bound))} of it`,
      per1000Note(totalCpu(cpus[i]), 'images'),
    ].filter(Boolean).join('; '));
    row.cer = ensCer;
    rows.push(row);
  });
  const peerTput = rows[0].throughput;
  const peerP50 = rows[0].p50Ms;
  const c16 = loads.find((r) => r.concurrency === 16)!;
  const c1 = loads.find((r) => r.concurrency === 1)!;
  const c4 = loads.find((r) => r.concurrency === 4)!;
  const i16 = loads.indexOf(c16);
  const over16 = overheadSplit(cpus[i16], fn);
  const bestAt = loads.reduce((b, r, i) => (r.throughput > loads[b].throughput ? i : b), 0);
  const bestBound = computeBound(cpus[bestAt]);
  const targets: TargetCheck[] = [
    { target: 'OCR at concurrency 16: >= 2x the images/s of @gutenye/ocr-node sequential', measured: `${fmt(c16.throughput)} vs ${fmt(peerTput)} images/s = ${fmt(ratio(c16.throughput, peerTput))}x`, met: ratio(c16.throughput, peerTput) >= 2 },
    { target: 'OCR character error rate no worse than the peer\'s', measured: `${fmt(ensCer * 100)}% vs ${fmt(peerCer * 100)}%`, met: ensCer <= peerCer },
    { target: 'OCR at concurrency 1: p50 <= 0.6x the peer\'s', measured: `${fmt(c1.latency.p50)} vs ${fmt(peerP50)} ms = ${fmt(ratio(c1.latency.p50, peerP50))}x`, met: ratio(c1.latency.p50, peerP50) <= 0.6 },
    {
      target: 'OCR at concurrency 16: gateway and transfer < 20% of CPU per image',
      measured: `${fmt(100 * over16.share, 1)}%: gateway ${fmt(over16.gateway)} ms (its ${fmt(cpus[i16].gateway)} ms less its function stages' ${fmt(fn.gateway)} ms and inline session.run) + workers outside session.run ${fmt(over16.workers)} ms`
        + (moved.length ? ` (less the ${fmt(fn.workers)} ms of the stages they run beside the model)` : '') + `, of ${fmt(over16.total)} ms`,
      met: over16.share < 0.2,
    },
    {
      target: 'OCR throughput at its best concurrency >= 0.85 of the model-compute bound (cores / session.run CPU per image)',
      measured: `c=${loads[bestAt].concurrency}: ${fmt(loads[bestAt].throughput)} of ${fmt(bestBound)} images/s = ${fmt(ratio(loads[bestAt].throughput, bestBound))}`,
      met: ratio(loads[bestAt].throughput, bestBound) >= 0.85,
    },
    { target: 'OCR: no drop in throughput from concurrency 4 to 16', measured: `${fmt(c4.throughput)} -> ${fmt(c16.throughput)} images/s`, met: c16.throughput >= c4.throughput },
  ];
  return {
    name: SCENARIO,
    title: 'OCR (PP-OCRv4 det + cls + rec)',
    rows,
    targets,
    notes: [
      `${samples.length} rendered pages (1 to 4 lines each, DejaVu Sans / Serif / Mono, 24 to 36 px), the same bytes for every system. `
      + `Sequential systems: ${passes} pass(es) over the set after one warm-up image, once before and once after Ensemble's levels, the faster session kept; ONNX Runtime's default of one intra-op thread per core. `
      + `Ensemble: raw PNG bodies to /v2/models/ocr/infer from a load generator process; requests per level ${OCR_CONCURRENCY.map((c) => `c=${c}: ${perLevel[c]}`).join(', ')}.`,
      cpuAnalysis(cpus[i16], peerRes, seqRes, peerTput, c16.concurrency, fn, moved),
      computeNote(cpus, loads, fn),
      `At concurrency 1, per image (mean over the level's run records: each stage's own work — session.run or the function; for a stage whose worker runs function stages beside the model, theirs too — and, where it is over 1 ms, the longest queue wait of the image's items): ${stageTimes}. `
      + 'An image\'s stages run one after another except that its text lines go through classify and recognize side by side (as many at once as the stage has instances); '
      + 'the time between the stages is the gateway moving tensors to and from the worker processes.',
      misreadNote(samples, { '@gutenye/ocr-node': peerRes.texts, Ensemble: ensTexts }),
      'Character error rate: edit distance over all pages / expected characters, whitespace collapsed (a line break and a space between two boxes count the same). '
      + '@gutenye/ocr-node does not run the direction classifier and pre-processes differently (no ImageNet normalisation, its own box expansion); the ensemble pipeline follows PaddleOCR\'s.',
    ],
  };
}
