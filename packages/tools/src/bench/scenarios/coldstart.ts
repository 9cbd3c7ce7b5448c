import { join } from 'node:path';
import sharp from 'sharp';
import { EnsembleError } from '@ensemble/core/errors.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { makeS3Client, settingsFromEnv } from '@ensemble/core/storage/config.js';
import { decodeStageResponse, encodeStageRequest } from '@ensemble/core/lambda/payload.js';
import type { ColdStartSplit } from '@ensemble/core/runtime/types.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { groupOf, placeStages } from '@ensemble/core/placement/placement.js';
import type { Item, Tensor } from '@ensemble/core/tensor/types.js';
import { startLocalServices, withLocalServices } from '../../local/local-services.js';
import { ensureBucket } from '../../local/bucket.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { pushPipeline } from '../../pipelines/push.js';
import { planDeployment } from '../../deploy/plan.js';
import { packageFunctions } from '../../package/package.js';
import { LambdaHost } from '../../lambda-host/host.js';
import { componentNames, hostedStageFunctions, storageEnvironment } from '../../lambda-host/from-plan.js';
import type { HostedFunction } from '../../lambda-host/types.js';
import { ocrSamples } from '../ocr-images.js';
import { lineCropPixels, lineCropTensors } from './line-crops.js';
import { markdownTable } from '../report.js';
import { percentile } from '../stats.js';
import type { BenchRow, BenchSettings, ScenarioResult } from '../types.js';
import { fmt, processCpuMs, withTempDir } from '../util.js';

const SCENARIO = 'coldstart';
/** What one OCR stage function may take from a fresh sandbox to its first answer. */
export const COLD_START_TARGET_MS = 500;
const OCR_STAGES = ['detect', 'classify', 'recognize'] as const;

/** What each stage function runs besides its session, as the plan places it. */
function colocatedNote(m: Manifest): string {
  const p = placeStages(m);
  const placed = OCR_STAGES.map((st) => groupOf(p, st)).filter((g) => g?.colocated.length).map((g) => `${g!.colocated.map((c) => c.stage).join(' and ')} in ${g!.onnx}`);
  return placed.length ? `the plan runs ${placed.join(', ')}, so those first runs include them, and those functions read what the pre-processing reads` : 'no pre-processing is placed in the stage functions';
}

/** One cold start: a fresh environment (own /tmp, empty weight cache) through its first answer. */
export interface ColdStartSample {
  /** Init Duration (process start to the handler ready) + the first invocation's Duration. */
  totalMs: number;
  initMs: number;
  durationMs: number;
  split: ColdStartSplit;
  /** CPU time (user + system) of the environment's process up to its first answer. */
  cpuMs?: number;
}

/** The parts of a cold start, in the order they happen, as the report's columns name them. */
const PARTS: { key: keyof ColdStartSplit | 'other'; label: string }[] = [
  { key: 'startMs', label: 'start (process + bundle)' },
  { key: 'fetchMs', label: 'fetch' },
  { key: 'hashMs', label: 'hash' },
  { key: 'sessionMs', label: 'session' },
  { key: 'firstRunMs', label: 'first run' },
  { key: 'other', label: 'rest' },
];

function median(xs: number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

/** The time left over once the named parts are taken out: IPC, decoding and encoding the first batch, the stage's bookkeeping. */
function otherMs(s: ColdStartSample): number {
  const named = (s.split.startMs ?? 0) + s.split.fetchMs + s.split.hashMs + s.split.sessionMs + (s.split.firstRunMs ?? 0);
  return Math.max(0, s.totalMs - named);
}

function part(s: ColdStartSample, key: keyof ColdStartSplit | 'other'): number {
  return key === 'other' ? otherMs(s) : (s.split[key] ?? 0);
}

/** A rendered page as the detector's input, as detect-pre makes it: sides rounded to 32, BGR, ImageNet-normalised, CHW. */
async function detectInput(png: Buffer): Promise<Tensor> {
  const meta = await sharp(png).metadata();
  const w = Math.max(32, Math.round((meta.width ?? 32) / 32) * 32);
  const h = Math.max(32, Math.round((meta.height ?? 32) / 32) * 32);
  const { data: px } = await sharp(png).resize(w, h, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const mean = [0.406, 0.456, 0.485];
  const std = [0.225, 0.224, 0.229];
  const data = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) {
    for (let c = 0; c < 3; c++) data[c * h * w + i] = (px[i * 3 + (2 - c)] / 255 - mean[c]) / std[c];
  }
  return { datatype: 'FP32', shape: [3, h, w], data };
}

/** Rows of a batched tensor as items keyed by the model's input name. */
function rowsOf(name: string, t: Tensor): Item[] {
  const [n, ...shape] = t.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => ({ [name]: { datatype: 'FP32' as const, shape, data: data.slice(i * per, (i + 1) * per) } }));
}

/**
 * A first batch like the OCR pipeline's gateway sends each stage function: a page to detect, two lines to classify,
 * one to recognise. Where the plan places pre-processing in a stage's function, that function reads what the
 * pre-processing reads (the encoded page, the line crops' pixels), and that is what it gets; else the model's input.
 */
async function firstBatches(m: Manifest): Promise<Record<(typeof OCR_STAGES)[number], Item[]>> {
  const [page] = await ocrSamples(1);
  const placement = placeStages(m);
  const reads = (stage: string): string | undefined => {
    const g = groupOf(placement, stage);
    if (!g?.colocated.length) return undefined;
    if (g.inputs.length !== 1) throw new EnsembleError(`the ${stage} function reads ${g.inputs.join(', ')}; this scenario sends it one tensor`);
    return g.inputs[0];
  };
  const lines = (n: number, width: number, as: string | undefined) => (as
    ? lineCropPixels(n).then((ts) => ts.map((t) => ({ [as]: t })))
    : lineCropTensors(n, width).then((t) => rowsOf('x', t)));
  const detectAs = reads('detect');
  return {
    detect: [detectAs ? { [detectAs]: { datatype: 'BYTES', shape: [], data: [new Uint8Array(page.png)] } } : { x: await detectInput(page.png) }],
    classify: await lines(2, 192, reads('classify')),
    recognize: await lines(1, 320, reads('recognize')),
  };
}

async function invoke(host: LambdaHost, fn: string, event: unknown): Promise<unknown> {
  const res = await fetch(`${host.url}/2015-03-31/functions/${fn}/invocations`, { method: 'POST', body: JSON.stringify(event) });
  const text = await res.text();
  if (res.status !== 200 || res.headers.get('x-amz-function-error')) throw new EnsembleError(`${fn}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as unknown;
}

/** One cold start of `fn` in a host of its own: the environment it starts is new, with an empty /tmp. */
async function coldStart(fn: HostedFunction, env: Record<string, string>, tmpDir: string, stage: string, event: unknown): Promise<ColdStartSample> {
  const host = await LambdaHost.start({ functions: [fn], environment: env, tmpDir, log: () => undefined });
  try {
    const payload = await invoke(host, fn.name, event);
    const [info] = host.environments(fn.name);
    const cpuMs = processCpuMs(info?.pid);
    const [report] = host.reports(fn.name);
    const result = decodeStageResponse(payload, stage);
    if (!result.coldStart || !result.coldStartSplit || report.initMs === undefined) {
      throw new EnsembleError(`${fn.name}: the first answer carries no cold start split`);
    }
    const failed = result.outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw new EnsembleError(`${fn.name}: ${failed.error}`);
    const sample: ColdStartSample = {
      totalMs: report.initMs + report.durationMs, initMs: report.initMs, durationMs: report.durationMs, split: result.coldStartSplit,
    };
    if (cpuMs !== undefined) sample.cpuMs = cpuMs;
    return sample;
  } finally {
    await host.close();
  }
}

/**
 * Cold starts of the OCR pipeline's ONNX stage functions, packaged as `npm
 * run package` makes them and run by the local Lambda host: each sample a
 * fresh execution environment (own process, own /tmp, so an empty weight
 * cache) fetching its weights from s3rver, through its first answer.
 */
export async function runColdStartScenario(s: BenchSettings): Promise<ScenarioResult> {
  const samples = s.quick ? 3 : 7;
  return withTempDir('ensemble-bench-coldstart-', async (dir) => {
    const services = await startLocalServices({ dataDir: join(dir, 'data') });
    try {
      const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
      const manifest = await loadManifest(join(s.root, 'models/ocr/pipeline.yaml'));
      await buildIfNeeded(manifest);
      const s3 = makeS3Client(settings);
      try {
        await ensureBucket(s3, settings.bucket);
        await pushPipeline(manifest, { s3, bucket: settings.bucket });
      } finally {
        s3.destroy();
      }
      const plan = planDeployment([manifest], { root: s.root });
      const stageFns = plan.stages.filter((f) => (OCR_STAGES as readonly string[]).includes(f.stage));
      const packaged = await packageFunctions(plan, { root: s.root, outDir: join(dir, 'dist'), only: stageFns.map((f) => f.name) });
      const bundleKb = Math.round(packaged[0].bytes / 1024);
      const functions = hostedStageFunctions({ ...plan, stages: stageFns }, { planRoot: s.root, names: componentNames(settings), packaged: join(dir, 'dist') });
      const env = storageEnvironment(settings);
      const batches = await firstBatches(manifest);

      const results = new Map<string, ColdStartSample[]>();
      // Round-robin over the stages, so a burst of load on the machine spreads over all of them.
      for (let i = 0; i < samples; i++) {
        for (const stage of OCR_STAGES) {
          const fn = functions.find((f) => f.environment.ENSEMBLE_STAGE === stage)!;
          const sample = await coldStart(fn, env, join(dir, 'lambda'), stage, encodeStageRequest('ocr', stage, batches[stage]));
          results.set(stage, [...(results.get(stage) ?? []), sample]);
          s.log(`  ${fn.name} #${i + 1}: ${fmt(sample.totalMs, 0)} ms (${PARTS.map((p) => `${p.label} ${fmt(part(sample, p.key), 0)}`).join(', ')})`);
        }
      }

      const rows: BenchRow[] = [];
      const targets = [];
      const table: string[][] = [];
      for (const stage of OCR_STAGES) {
        const fn = functions.find((f) => f.environment.ENSEMBLE_STAGE === stage)!;
        const xs = results.get(stage)!;
        const totals = xs.map((x) => x.totalMs);
        const med = median(totals);
        const cpu = xs.every((x) => x.cpuMs !== undefined) ? median(xs.map((x) => x.cpuMs!)) : undefined;
        const parts = PARTS.map((p) => median(xs.map((x) => part(x, p.key))));
        rows.push({
          scenario: SCENARIO, system: `${fn.name} cold start (packaged, local Lambda host)`, concurrency: 1,
          throughput: 1000 / med, unit: 'cold starts/s', p50Ms: med, p99Ms: Math.max(...totals), samples: xs.length, failed: 0,
          note: `median ${PARTS.map((p, j) => `${p.label} ${fmt(parts[j], 0)}`).join(', ')} ms${cpu !== undefined ? `; CPU ${fmt(cpu, 0)} ms` : ''}`,
        });
        targets.push({
          target: `${fn.name} (ocr ${stage}) cold start <= ${COLD_START_TARGET_MS / 1000} s`,
          measured: `median ${fmt(med, 0)} ms of ${xs.length} (min ${fmt(Math.min(...totals), 0)}, max ${fmt(Math.max(...totals), 0)})`,
          met: med <= COLD_START_TARGET_MS,
        });
        table.push([fn.name, fmt(med, 0), ...parts.map((p) => fmt(p, 0)), cpu === undefined ? '' : fmt(cpu, 0)]);
      }
      return {
        name: SCENARIO,
        title: 'Cold starts of the OCR stage functions (local Lambda host, empty /tmp, weights from S3)',
        rows,
        targets,
        notes: [
          markdownTable(['function', 'cold start (median ms)', ...PARTS.map((p) => p.label), 'CPU ms'], table),
          `Each of the ${samples} samples per stage is a new local Lambda host with one function, packaged as \`npm run package\` makes it (${bundleKb.toLocaleString('en-US')} KB unzipped), `
          + 'whose first Invoke starts a fresh execution environment: its own process and /tmp, so the weight cache is empty and the weights come from s3rver (in the benchmark\'s process). '
          + 'Cold start is the host\'s Init Duration (process start to the handler ready) plus the first Duration (the handler\'s run of the first batch), as Lambda\'s REPORT line gives them. '
          + 'Parts are medians over the samples, from the first answer\'s `coldStartSplit`: start = process start to the stage\'s init beginning (Node and the entry\'s modules); '
          + 'fetch and hash = the weights streamed from S3 through sha256 to the file, while the handler\'s chunk and onnxruntime-node load; session = InferenceSession.create; first run = the first batch\'s session.run; '
          + 'rest = the remainder (IPC, decoding and encoding the first batch). CPU ms = the environment\'s process (user + system, /proc) up to its first answer. '
          + `First batches, as the gateway sends them: one rendered page for detect, two lines for classify, one for recognize (${colocatedNote(manifest)}). Samples go round-robin over the stages.`,
        ],
      };
    } finally {
      await services.close();
    }
  });
}
