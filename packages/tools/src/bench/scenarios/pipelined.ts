import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest, OnnxStage } from '@ensemble/core/manifest/types.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import type { Item, Tensor } from '@ensemble/core/tensor/types.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, encodeInferRequest } from '@ensemble/core/tensor/codec.js';
import { splitRows } from '@ensemble/core/tensor/rows.js';
import type { RunningServer } from '../../serve/server.js';
import { startBenchServer } from '../bench-server.js';
import { writeSplitPipeline } from '../split-model.js';
import { summarize } from '../stats.js';
import type { BenchRow, BenchSettings, ScenarioResult } from '../types.js';
import { cpuSnapshot, fmt, withTempDir } from '../util.js';
import { WorkerPoolTransport } from '@ensemble/core/transport/worker-pool.js';
import { lineCropTensors } from './line-crops.js';

export const PIPELINED_ITEMS = 64;
const SCENARIO = 'pipelined';

interface Timing { totalMs: number; stageMs: number[]; computeMs: number[] }

/**
 * The request stage after stage, through the same worker processes the
 * server uses: stage 1 on every chunk (chunks of the stage's batch size, as
 * many at once as it has instances), then stage 2 on every chunk, ...
 */
async function stageAfterStage(server: RunningServer, m: Manifest, inputs: Record<string, Tensor>): Promise<Timing> {
  const loaded = server.registry.transportOf(m.name);
  if (!loaded) throw new Error(`pipeline '${m.name}' is not loaded`);
  const { transport, address } = loaded;
  const rows = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, splitRows(t)]));
  const n = Object.values(rows)[0].length;
  const tensors: Record<string, Tensor>[] = Array.from({ length: n }, (_, i) => Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, r[i]])));
  const stageMs: number[] = [];
  const computeMs: number[] = [];
  const t0 = performance.now();
  for (const name of m.order) {
    const stage = m.stages.find((s) => s.name === name)!;
    const size = stage.batch.maxSize;
    const chunks: number[][] = [];
    for (let i = 0; i < n; i += size) chunks.push(Array.from({ length: Math.min(size, n - i) }, (_, j) => i + j));
    const s0 = performance.now();
    let next = 0;
    let compute = 0;
    await Promise.all(Array.from({ length: stage.scale.instances }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        const items: Item[] = chunk.map((i) => Object.fromEntries(Object.entries(stage.inputs).map(([local, t]) => [local, tensors[i][t]])));
        const r = await transport.invoke(address, stage.name, items);
        compute += r.computeMs;
        r.outcomes.forEach((o, j) => {
          if (!o.ok) throw new Error(`stage '${stage.name}': ${o.error}`);
          for (const [local, t] of Object.entries(stage.outputs)) tensors[chunk[j]][t] = o.items[0][local];
        });
      }
    }));
    stageMs.push(performance.now() - s0);
    computeMs.push(compute);
  }
  return { totalMs: performance.now() - t0, stageMs, computeMs };
}

/** Flow-shop time of k equal chunks through stages taking t_s each in total: every stage's first chunk, then the slowest stage for the rest. */
export function predictPipelinedMs(stageMs: number[], chunks: number): number {
  const sum = stageMs.reduce((a, b) => a + b, 0);
  return sum / chunks + ((chunks - 1) * Math.max(...stageMs)) / chunks;
}

const median = (xs: number[]): number => summarize(xs).p50;
const sumFinite = (xs: number[]): number => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);

/** Items per stage call in this scenario: 64 items make 8 chunks. */
const CHUNK = 8;

/**
 * The recogniser stages of models/ocr-split (its chain of ONNX stages) as a
 * pipeline of their own, written under `modelsDir`: text-line tensors in,
 * the recogniser's probabilities out. Each stage gets one single-threaded
 * worker and batches of CHUNK (the 64 items leave a stage in 8 calls), so
 * stage after stage keeps one core busy and pipelining can use the second:
 * that is the effect measured, whatever the manifest's own scale.
 */
async function recognizerChain(file: string, modelsDir: string, log: (s: string) => void): Promise<{ manifest: Manifest; stages: string[] } | undefined> {
  const full = await loadManifest(file);
  const onnx = full.stages.filter((x): x is OnnxStage => x.kind === 'onnx' && x.name.startsWith('recognize'));
  if (onnx.length < 2) return undefined;
  await buildIfNeeded(full, log);
  const first = onnx[0];
  const last = onnx[onnx.length - 1];
  const inTensor = Object.values(first.inputs)[0];
  const [, outTensor] = Object.entries(last.outputs)[0];
  const stage = (x: OnnxStage) => [
    `  - name: ${x.name}`,
    '    kind: onnx',
    `    weights: { key: ${JSON.stringify(x.weights.key)}, sha256: ${x.weights.sha256}, source: ${JSON.stringify(x.weights.source)} }`,
    `    inputs: { ${Object.entries(x.inputs).map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')} }`,
    `    outputs: { ${Object.entries(x.outputs).map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')} }`,
    `    batch: { max_size: ${CHUNK}, max_delay_ms: 2${x.batch.padAxis !== undefined ? `, pad_axis: ${x.batch.padAxis}, pad_value: ${x.batch.padValue}` : ''} }`,
    '    scale: { instances: 1, threads: 1 }',
  ].join('\n');
  const dir = join(modelsDir, 'ocr-split-rec');
  await mkdir(dir, { recursive: true });
  const yaml = [
    'name: ocr-split-rec',
    `description: The recogniser stages of ${file}, alone.`,
    'inputs:', `  - { name: ${inTensor}, datatype: FP32, shape: [-1, 3, 48, -1] }`,
    // Items of one request are the same width here, but the manifest cannot know: their outputs are joined as ragged.
    'outputs:', `  - { name: ${outTensor}, datatype: FP32, shape: [-1, -1, -1], ragged: { pad_value: 0 } }`,
    'stages:', ...onnx.map(stage), '',
  ].join('\n');
  await writeFile(join(dir, 'pipeline.yaml'), yaml);
  return { manifest: await loadManifest(join(dir, 'pipeline.yaml')), stages: onnx.map((x) => x.name) };
}

/**
 * A 64-item request through a model cut into stages: the executor pipelines
 * (each chunk moves to the next stage as soon as its batch is done, so the
 * stages' worker processes run at the same time) versus the same chunks
 * stage after stage. The stage times predict the speedup; both are reported.
 */
export async function runPipelinedScenario(s: BenchSettings): Promise<ScenarioResult> {
  const repeats = s.quick ? 3 : 7;
  return withTempDir('ensemble-bench-pipe-', async (tmp) => {
    const splitFile = join(s.root, 'models', 'ocr-split', 'pipeline.yaml');
    let manifest: Manifest;
    let inputs: Record<string, Tensor>;
    let what: string;
    const modelsDir = join(tmp, 'models');
    const rec = existsSync(splitFile) ? await recognizerChain(splitFile, modelsDir, s.log) : undefined;
    if (rec) {
      manifest = rec.manifest;
      inputs = { [manifest.inputs[0].name]: await lineCropTensors(PIPELINED_ITEMS, 320) };
      what = `the PP-OCRv4 recogniser as models/ocr-split cuts it (${rec.stages.join(' -> ')}, made by ensemble decompose), on ${PIPELINED_ITEMS} rendered text-line crops of 48 x 320`;
    } else {
      const file = await writeSplitPipeline(modelsDir, { size: 128, iterations: [10, 14], batch: CHUNK });
      manifest = await loadManifest(file);
      const x = new Float32Array(PIPELINED_ITEMS * 4).map((_, i) => Math.sin(i * 0.37));
      inputs = { x: { datatype: 'FP32', shape: [PIPELINED_ITEMS, 4], data: x } };
      what = `a generated model cut in two ONNX stages (GEMM chains of 10 and 14 128x128 products per item; models/ocr-split is not there), ${PIPELINED_ITEMS} rows`;
    }
    s.log(`pipelined: ${what}`);
    const server = await startBenchServer({ dataDir: join(tmp, 'data'), modelsDir, pipelines: [manifest.name], log: () => undefined });
    const seq: Timing[] = [];
    const pipe: number[] = [];
    const pipeCompute: number[][] = [];
    const http: number[] = [];
    try {
      const m = server.registry.get(manifest.name).manifest;
      const executor = server.registry.get(manifest.name).executor;
      const body = encodeInferRequest(inputs, { binary: true, outputs: m.outputs.map((o) => ({ name: o.name, binary: true })) });
      const url = `${server.url}/v2/models/${m.name}/infer`;
      const viaHttp = async () => {
        const t0 = performance.now();
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', [INFERENCE_HEADER_CONTENT_LENGTH]: String(body.headerLength) }, body: Buffer.from(body.body) });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`pipelined request failed: HTTP ${res.status}`);
        return performance.now() - t0;
      };
      // Warm every session and code path once.
      await stageAfterStage(server, m, inputs);
      await executor.run(inputs);
      await viaHttp();
      const loaded = server.registry.transportOf(m.name);
      const pids: Record<string, number | undefined> = {};
      if (loaded?.transport instanceof WorkerPoolTransport) {
        for (const st of m.stages) loaded.transport.workersOf(loaded.address, st.name).forEach((w, i) => { pids[`${st.name}#${i}`] = w.pid; });
      }
      const seqCpu: number[] = [];
      // Per request, stage after stage: the gateway's CPU, the workers', and session.run's own (the workers' measure).
      const seqGateway: number[] = [];
      const seqWorkers: number[] = [];
      const seqRun: number[] = [];
      const pool = loaded?.transport instanceof WorkerPoolTransport ? loaded.transport : undefined;
      const runCpu = () => sumFinite(m.stages.map((st) => (pool && loaded ? pool.usage(loaded.address, st.name)?.computeCpuMs ?? NaN : NaN)));
      const pipeTransfer: { serializeMs: number; ipcMs: number }[] = [];
      for (let r = 0; r < repeats; r++) {
        const cpu = cpuSnapshot(pids);
        const run0 = runCpu();
        seq.push(await stageAfterStage(server, m, inputs));
        const used = cpu();
        const workers = sumFinite(Object.values(used.children));
        seqCpu.push(used.self + workers);
        seqGateway.push(used.self);
        seqWorkers.push(workers);
        seqRun.push(runCpu() - run0);
        const t0 = performance.now();
        const run = await executor.run(inputs);
        pipe.push(performance.now() - t0);
        pipeCompute.push(m.order.map((n) => run.stages.find((x) => x.stage === n)?.computeMs ?? NaN));
        pipeTransfer.push({
          serializeMs: sumFinite(run.stages.map((x) => x.transfer?.serializeMs ?? NaN)),
          ipcMs: sumFinite(run.stages.map((x) => x.transfer?.ipcMs ?? NaN)),
        });
        http.push(await viaHttp());
      }
      const stageMs = m.order.map((_, i) => median(seq.map((t) => t.stageMs[i])));
      const seqMs = median(seq.map((t) => t.totalMs));
      const pipeMs = median(pipe);
      const httpMs = median(http);
      const chunkCounts = m.order.map((n) => Math.ceil(PIPELINED_ITEMS / m.stages.find((x) => x.name === n)!.batch.maxSize));
      const k = Math.min(...chunkCounts);
      const predictedMs = predictPipelinedMs(stageMs, k);
      const sum = stageMs.reduce((a, b) => a + b, 0);
      const predicted = sum / predictedMs;
      const ideal = sum / Math.max(...stageMs);
      const measured = seqMs / pipeMs;
      // All the CPU the request needs (workers and the gateway's tensor copying) spread over every core: pipelining cannot beat that.
      const cores = availableParallelism();
      const cpuMs = median(seqCpu);
      const boundMs = Math.max(predictedMs, cpuMs / cores);
      const bounded = seqMs / boundMs;
      const stageList = m.order.map((n, i) => `${n} ${fmt(stageMs[i])} ms`).join(', ');
      const computeSeq = m.order.map((_, i) => median(seq.map((t) => t.computeMs[i])));
      const computePipe = m.order.map((_, i) => median(pipeCompute.map((c) => c[i])));
      const computeList = (xs: number[]) => m.order.map((n, i) => `${n} ${fmt(xs[i])} ms`).join(', ');
      s.log(`pipelined: stage after stage ${fmt(seqMs)} ms (${stageList}); pipelined ${fmt(pipeMs)} ms (HTTP ${fmt(httpMs)} ms); predicted ${fmt(predicted)}x, measured ${fmt(measured)}x`);
      const row = (system: string, ms: number, note?: string): BenchRow => {
        const r: BenchRow = { scenario: SCENARIO, system, concurrency: 1, throughput: (PIPELINED_ITEMS * 1000) / ms, unit: 'items/s', p50Ms: ms, p99Ms: Math.max(...(system.startsWith('stage') ? seq.map((t) => t.totalMs) : system.includes('HTTP') ? http : pipe)), samples: repeats, failed: 0 };
        if (note) r.note = note;
        return r;
      };
      const rows: BenchRow[] = [
        row('stage after stage (same workers)', seqMs, stageList),
        row('pipelined (executor)', pipeMs, `${fmt(measured)}x faster; stage times predict ${fmt(predicted)}x, CPU time at most ${fmt(bounded)}x`),
        row('pipelined (HTTP request, binary tensors)', httpMs),
      ];
      const ok = measured >= predicted * 0.9;
      return {
        name: SCENARIO,
        title: `One ${PIPELINED_ITEMS}-item request through a decomposed model: pipelined vs stage after stage`,
        rows,
        targets: [{
          target: `pipelined ${PIPELINED_ITEMS}-item request faster than stage after stage by the ratio the stage times predict`,
          measured: `stage times ${stageList}; predicted ${fmt(predicted)}x (${k} chunks; ${fmt(ideal)}x with infinitely many), measured ${fmt(measured)}x; `
            + `the CPU the request uses (${fmt(cpuMs)} ms on ${cores} cores) allows at most ${fmt(bounded)}x`,
          met: ok,
        }],
        notes: [
          `Model: ${what}. Each stage: batch max_size ${m.stages.map((x) => x.batch.maxSize).join('/')} (so ${k} chunks), ${m.stages.map((x) => `${x.scale.instances}x${x.scale.threads}`).join('/')} instances x threads, the server's worker processes for both ways.`,
          `Stage after stage: every chunk through stage 1, then every chunk through stage 2 (transport calls, no HTTP). Pipelined: the executor, where a chunk goes to stage 2 as soon as stage 1 has done it, so both workers compute at once. `
          + `Prediction from the measured stage times t_s with k chunks: sum(t) / (sum(t)/k + (k-1)/k * max(t)); with 2 cores and one single-threaded worker per stage the ideal is sum(t)/max(t). Medians of ${repeats} runs. "Met" allows 10% below the prediction.`,
          `Time inside session.run (the workers' own measure): stage after stage ${computeList(computeSeq)}; pipelined ${computeList(computePipe)}. `
          + `The rest of a stage time is moving tensors between processes (the gateway copies every batch to a worker and back): here ${fmt(sum - computeSeq.reduce((a, b) => a + b, 0))} ms of the ${fmt(sum)} ms. `
          + `Pipelined, that copying competes with both workers for the ${cores} cores, which the stage-time prediction leaves out. Counting it: the request takes ${fmt(cpuMs)} ms of CPU in all `
          + `(gateway and workers, from /proc), so on ${cores} cores it cannot finish in less than ${fmt(cpuMs / cores)} ms, a speedup of at most ${fmt(bounded)}x. `
          + `And the work itself gets slower when it overlaps: with both workers busy at once, session.run took ${fmt(100 * (computePipe.reduce((a, b) => a + b, 0) / computeSeq.reduce((a, b) => a + b, 0) - 1), 0)}% longer in all `
          + `than one at a time (the cores share caches and memory bandwidth, and the copying needs CPU too).`,
          `CPU per request, stage after stage (medians; /proc for the processes, the workers' own measure for session.run): gateway ${fmt(median(seqGateway))} ms, `
          + `workers ${fmt(median(seqWorkers))} ms of which session.run ${fmt(median(seqRun))} ms; so moving the tensors (the gateway, and the workers outside session.run) takes `
          + `${fmt(median(seqGateway) + median(seqWorkers) - median(seqRun))} ms of CPU of the ${fmt(cpuMs)} ms, ${fmt((100 * (median(seqGateway) + median(seqWorkers) - median(seqRun))) / cpuMs, 1)}%. `
          + `The pipelined run's records split their transfer time into laying out, reading, stacking and splitting the tensors on both sides (serializeMs, ${fmt(median(pipeTransfer.map((t) => t.serializeMs)))} ms) `
          + `and the rest of the round trips: the pipe, and each process waiting for the other (ipcMs, ${fmt(median(pipeTransfer.map((t) => t.ipcMs)))} ms), summed over the stages' batches.`,
        ],
      };
    } finally {
      await server.close();
    }
  });
}
