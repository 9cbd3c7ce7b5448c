import { join } from 'node:path';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { RunRecord, StageRunRecord } from '@ensemble/core/storage/types.js';
import { describePlacement, placeStages } from '@ensemble/core/placement/placement.js';
import type { RunningServer } from '../../serve/server.js';
import { LocalLambdaTransport } from '../../lambda-host/local-transport.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { startBenchServer } from '../bench-server.js';
import { runLoadInChild } from '../load.js';
import { ocrSamples, type OcrSample } from '../ocr-images.js';
import type { BenchRow, BenchSettings, LoadResult, ScenarioResult, TargetCheck } from '../types.js';
import { cpuSnapshot, failureNote, fmt, loadRow, ratio, withTempDir } from '../util.js';
import { WorkerPoolTransport } from '@ensemble/core/transport/worker-pool.js';

const SCENARIO = 'ocr-lambda';
export const OCR_LAMBDA_CONCURRENCY = [1, 4];

type System = 'in-process' | 'lambda';

interface Measured {
  loads: LoadResult[];
  /** Per level, CPU ms per image: the gateway's process (the local Lambda host included) and the stage processes, by stage or function. */
  cpu: { gateway: number; stages: Record<string, number> }[];
  /** Run records of the concurrency-1 level. */
  records: RunRecord[];
  /** The host's environments per function at the end (lambda only). */
  environments?: Record<string, number>;
}

async function ocrManifest(root: string): Promise<Manifest | undefined> {
  for (const f of await findManifests(join(root, 'models'))) {
    const m = await loadManifest(f);
    if (m.name === 'ocr') return m;
  }
  return undefined;
}

/**
 * One server (worker pool, or the Lambda transport with its local host),
 * warmed with every level's concurrency, then each level measured; the
 * concurrency-1 level's run records kept for the hops.
 */
async function measure(system: System, s: BenchSettings, samples: OcrSample[], perLevel: Record<number, number>, capMs: number): Promise<Measured> {
  return withTempDir(`ensemble-bench-${system}-`, async (dataDir) => {
    let lambda: LocalLambdaTransport | undefined;
    const server: RunningServer = await startBenchServer({
      dataDir, modelsDir: join(s.root, 'models'), pipelines: ['ocr'], log: () => undefined,
      transport: system === 'lambda'
        ? async (env) => (lambda = await LocalLambdaTransport.start({ settings: env.settings, s3: env.s3, log: () => undefined, host: { tmpDir: join(dataDir, 'lambda'), log: () => undefined } }))
        : undefined,
    });
    try {
      const requests = samples.map((smp) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(smp.png) }));
      const loads: LoadResult[] = [];
      const cpu: Measured['cpu'] = [];
      let records: RunRecord[] = [];
      const max = Math.max(...OCR_LAMBDA_CONCURRENCY);
      // Warm every environment (or worker) the highest level will use, so no level pays a cold start.
      await runLoadInChild({ url: server.url, requests, concurrency: max, maxRequests: max * 2, maxDurationMs: capMs, requestTimeoutMs: 120_000 });
      for (const c of OCR_LAMBDA_CONCURRENCY) {
        const base = { url: server.url, requests, concurrency: c, requestTimeoutMs: 120_000 };
        await runLoadInChild({ ...base, maxRequests: c, maxDurationMs: capMs });
        const snap = cpuSnapshot(stagePids(server, lambda));
        const r = await runLoadInChild({ ...base, maxRequests: perLevel[c], maxDurationMs: capMs });
        const used = snap();
        const stages: Record<string, number> = {};
        for (const [k, v] of Object.entries(used.children)) {
          const st = k.replace(/#\d+$/, '');
          if (Number.isFinite(v)) stages[st] = (stages[st] ?? 0) + v / Math.max(1, r.ok);
        }
        cpu.push({ gateway: used.self / Math.max(1, r.ok), stages });
        if (c === 1) {
          await server.env.runs.flush();
          records = await server.env.runs.listByPipeline('ocr', r.ok);
        }
        s.log(`${SCENARIO} c=${c} ${system}: ${fmt(r.throughput)} images/s p50 ${fmt(r.latency.p50)} ms p99 ${fmt(r.latency.p99)} ms`);
        loads.push(r);
      }
      const out: Measured = { loads, records, cpu };
      if (lambda) {
        out.environments = Object.fromEntries(lambda.host.functionNames().map((n) => [n, lambda!.host.environments(n).filter((e) => e.state !== 'dead').length]));
      }
      return out;
    } finally {
      await server.close();
    }
  });
}

/** The processes that run stages besides the gateway's: worker processes, or the local host's environments. */
function stagePids(server: RunningServer, lambda: LocalLambdaTransport | undefined): Record<string, number | undefined> {
  const pids: Record<string, number | undefined> = {};
  if (lambda) {
    for (const n of lambda.host.functionNames()) lambda.host.environments(n).forEach((e, i) => { if (e.state !== 'dead') pids[`${n}#${i}`] = e.pid; });
    return pids;
  }
  const loaded = server.registry.transportOf('ocr');
  if (loaded?.transport instanceof WorkerPoolTransport) {
    for (const st of ['detect', 'classify', 'recognize']) loaded.transport.workersOf(loaded.address, st).forEach((w, i) => { pids[`${st}#${i}`] = w.pid; });
  }
  return pids;
}

function cpuNote(c: Measured['cpu'][number]): string {
  const stages = Object.values(c.stages).reduce((a, b) => a + b, 0);
  return `CPU ${fmt(c.gateway + stages)} ms/image (gateway ${fmt(c.gateway)}; ${Object.entries(c.stages).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || 'no stage processes'})`;
}

/** Per image, mean over the records: each stage function's Invoke bytes both ways, spills, round trip against the handler. */
function hopNote(records: RunRecord[]): string {
  const n = Math.max(1, records.length);
  const by = new Map<string, NonNullable<StageRunRecord['hops']>[]>();
  for (const r of records) for (const st of r.stages) if (st.hops) (by.get(st.stage) ?? by.set(st.stage, []).get(st.stage)!).push(st.hops);
  const kb = (b: number) => `${fmt(b / 1024, 1)} KB`;
  const parts = [...by].map(([stage, hs]) => {
    const sum = (k: keyof NonNullable<StageRunRecord['hops']>) => hs.reduce((a, h) => a + h[k], 0) / n;
    const spilled = sum('spillUpBytes') + sum('spillDownBytes');
    return `${stage}: ${fmt(sum('invokes'), 1)} Invokes, ${kb(sum('requestBytes'))} up / ${kb(sum('responseBytes'))} down, `
      + `${spilled > 0 ? `${kb(spilled)} through S3 (${fmt(sum('spillUpMs') + sum('spillDownMs'))} ms)` : 'no S3 spill'}, `
      + `round trip ${fmt(sum('roundTripMs'))} ms vs ${fmt(sum('functionMs'))} ms in the handler`;
  });
  return parts.join('; ');
}

/**
 * OCR through the Lambda transport (`serve --transport lambda`: each ONNX
 * stage a function in the local Lambda host, invoked with the AWS SDK, with
 * the deployment plan's placement) against the same server with worker
 * processes, measured in the same run, one after the other.
 */
export async function runOcrLambdaScenario(s: BenchSettings): Promise<ScenarioResult> {
  const manifest = await ocrManifest(s.root);
  if (!manifest) throw new Error('no models/ocr pipeline: the ocr-lambda scenario needs it');
  await buildIfNeeded(manifest, s.log);
  const samples = await ocrSamples(s.quick ? 6 : 12);
  const perLevel: Record<number, number> = s.quick ? { 1: 12, 4: 16 } : { 1: 36, 4: 48 };
  const capMs = s.quick ? 30_000 : 90_000;

  s.log(`${SCENARIO}: worker pool (in process on this machine)`);
  const local = await measure('in-process', s, samples, perLevel, capMs);
  s.log(`${SCENARIO}: Lambda transport and the local Lambda host`);
  const lambda = await measure('lambda', s, samples, perLevel, capMs);

  const rows: BenchRow[] = [];
  const at = (m: Measured, c: number) => m.loads.find((r) => r.concurrency === c)!;
  const note = (m: Measured, c: number) => [failureNote(at(m, c)), cpuNote(m.cpu[OCR_LAMBDA_CONCURRENCY.indexOf(c)])].filter(Boolean).join('; ');
  for (const c of OCR_LAMBDA_CONCURRENCY) {
    rows.push(loadRow(SCENARIO, 'ensemble, worker pool', 'images/s', at(local, c), note(local, c)));
    rows.push(loadRow(SCENARIO, 'ensemble, Lambda transport (local host)', 'images/s', at(lambda, c), note(lambda, c)));
  }
  const p50 = ratio(at(lambda, 1).latency.p50, at(local, 1).latency.p50);
  const tput = ratio(at(lambda, 4).throughput, at(local, 4).throughput);
  const targets: TargetCheck[] = [
    { target: 'OCR through the Lambda transport, warm, concurrency 1: p50 <= 1.3x the worker pool\'s', measured: `${fmt(at(lambda, 1).latency.p50)} vs ${fmt(at(local, 1).latency.p50)} ms = ${fmt(p50)}x`, met: p50 <= 1.3 },
    { target: 'OCR through the Lambda transport, concurrency 4: >= 0.5x the worker pool\'s images/s', measured: `${fmt(at(lambda, 4).throughput)} vs ${fmt(at(local, 4).throughput)} images/s = ${fmt(tput)}x`, met: tput >= 0.5 },
  ];
  const envs = lambda.environments ? Object.entries(lambda.environments).map(([k, v]) => `${k} ${v}`).join(', ') : '';
  return {
    name: SCENARIO,
    title: 'OCR through the Lambda transport',
    rows,
    targets,
    notes: [
      `${samples.length} rendered pages, raw PNG bodies from a load generator process; each server warmed with ${Math.max(...OCR_LAMBDA_CONCURRENCY) * 2} requests at concurrency ${Math.max(...OCR_LAMBDA_CONCURRENCY)} first, `
      + `then per level ${OCR_LAMBDA_CONCURRENCY.map((c) => `c=${c}: ${perLevel[c]}`).join(', ')} requests. The worker pool ran first, then the Lambda transport, on the same machine.`,
      `Placement (the deployment plan's, from the manifest): ${describePlacement(placeStages(manifest)).join('; ')}. `
      + `The local host runs at most one environment per core for each function and queues further invocations on the warm ones; at the end it had ${envs || 'no'} environments.`,
      `Hops per image at concurrency 1 (run records, mean): ${hopNote(lambda.records) || 'none recorded'}.`,
    ],
  };
}
