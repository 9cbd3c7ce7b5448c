import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { RunRecord } from '@ensemble/core/storage/types.js';
import type { JobStatus, ResultLine } from '@ensemble/core/jobs/types.js';
import { inFlightFor } from '@ensemble/core/jobs/service.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { startBenchServer } from '../bench-server.js';
import { runLoadInChild } from '../load.js';
import { ocrSampleSpecs, scoreLines } from '../ocr-specs.js';
import { renderTextImage, type RenderOptions } from '../render.js';
import { summarize } from '../stats.js';
import type { BenchRow, BenchSettings, LoadRequest, LoadResult, ScenarioResult, TargetCheck } from '../types.js';
import { failureNote, fmt, loadRow, processCpuMs, ratio, withTempDir } from '../util.js';
import { childPids, childRole } from '../process-memory.js';

const SCENARIO = 'job';
/** Images in the job unless `--job-images` says otherwise. */
export const DEFAULT_JOB_IMAGES = 1_000;
const INPUT_PREFIX = 'bench-job/in/';
const OUTPUT_PREFIX = 'bench-job/out/';

/** Per image, per stage: its share of the batches it ran in (a batch's compute split over the items in it). */
export interface StageShare { stage: string; computeMsPerImage: number; itemsPerImage: number }

/** Mean per-image compute of each stage, from the job's run records: the figure a Lambda bill is made of. */
export function stageShares(records: RunRecord[]): StageShare[] {
  const by = new Map<string, { ms: number; items: number }>();
  for (const rec of records) {
    for (const st of rec.stages) {
      const a = by.get(st.stage) ?? { ms: 0, items: 0 };
      const batchItems = st.batchSizes.reduce((x, y) => x + y, 0);
      // A shared batch's compute counts once over all its items, not once per request.
      a.ms += batchItems > 0 ? (st.computeMs * st.items) / batchItems : st.computeMs;
      a.items += st.items;
      by.set(st.stage, a);
    }
  }
  const n = Math.max(1, records.length);
  return [...by].map(([stage, a]) => ({ stage, computeMsPerImage: a.ms / n, itemsPerImage: a.items / n }));
}

async function ocrManifest(root: string): Promise<Manifest> {
  for (const f of await findManifests(join(root, 'models'))) {
    const m = await loadManifest(f);
    if (m.name === 'ocr') return m;
  }
  throw new Error('no models/ocr pipeline: the job scenario needs it');
}

/** CPU (user + system, ms) so far of the server's processes, by part. */
interface ServerCpu {
  /** This process: the gateway, its function stages and the job consumer. */
  gateway: number;
  workers: number;
  /** The S3, DynamoDB and SQS emulators' child. */
  emulators: number;
}

/** The server's CPU so far: this process, its stage workers and the emulators' child; not the load generator's child. */
function serverCpu(): ServerCpu {
  const u = process.cpuUsage();
  const children = childPids(process.pid);
  const sum = (pids: number[]) => pids.reduce((a, p) => a + (processCpuMs(p) ?? 0), 0);
  return {
    gateway: (u.user + u.system) / 1000,
    workers: sum(children.filter((p) => childRole(p).startsWith('worker '))),
    emulators: sum(children.filter(isServicesChild)),
  };
}

/** CPU per image over a span, by part, and in all. */
function cpuPer(from: ServerCpu, to: ServerCpu, images: number): ServerCpu & { total: number } {
  const n = Math.max(1, images);
  const gateway = (to.gateway - from.gateway) / n;
  const workers = (to.workers - from.workers) / n;
  const emulators = (to.emulators - from.emulators) / n;
  return { gateway, workers, emulators, total: gateway + workers + emulators };
}

function cpuText(c: ServerCpu & { total: number }): string {
  return `CPU ${fmt(c.total)} ms/image (gateway ${fmt(c.gateway)}, workers ${fmt(c.workers)}, emulators ${fmt(c.emulators)})`;
}

function isServicesChild(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('services-child'); } catch { return false; }
}

function imageKey(i: number, spec: RenderOptions): string {
  return `${INPUT_PREFIX}${String(i).padStart(6, '0')}.${spec.format === 'jpeg' ? 'jpg' : 'png'}`;
}

async function inBatches<T>(items: T[], width: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map((x, j) => fn(x, i + j)));
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/**
 * An N-image OCR job (rendered pages with known text, uploaded under one
 * prefix, submitted as `inputs.prefix`) against the synchronous endpoint on
 * the same server and machine: the job's images/s beside the endpoint's at
 * c=4 and c=16, and the endpoint's latency at c=1 alone and while the job
 * runs (job items run at priority 1, so synchronous requests go first).
 */
export async function runJobScenario(s: BenchSettings): Promise<ScenarioResult> {
  const manifest = await ocrManifest(s.root);
  await buildIfNeeded(manifest, s.log);
  const n = s.jobImages ?? (s.quick ? 100 : DEFAULT_JOB_IMAGES);
  s.log(`job: rendering ${n} images`);
  const specs = ocrSampleSpecs(n);
  const images: Buffer[] = new Array<Buffer>(n);
  await inBatches(specs, 8, async (spec, i) => { images[i] = await renderTextImage(spec); });
  const perLevel: Record<number, number> = s.quick ? { 1: 8, 4: 16, 16: 32 } : { 1: 24, 4: 48, 16: 96 };
  const capMs = s.quick ? 30_000 : 90_000;

  return withTempDir('ensemble-bench-job-', async (dataDir) => {
    // The emulators (SQS included) in a process of their own, as the ocr and tiny scenarios run them: on AWS,
    // S3, SQS and DynamoDB are not in the gateway's process, and a job item's reads and writes there are
    // what the job adds to an inference. The gateway polls the queue as `ensemble serve` does. The
    // synchronous levels run against the same server.
    const server = await startBenchServer({ dataDir, modelsDir: join(s.root, 'models'), pipelines: ['ocr'], consumeJobs: true, log: () => undefined });
    try {
      const { s3, settings } = server.env;
      s.log(`job: uploading ${n} images under ${INPUT_PREFIX}`);
      await inBatches(specs, 16, async (spec, i) => {
        await s3.send(new PutObjectCommand({ Bucket: settings.bucket, Key: imageKey(i, spec), Body: images[i], ContentType: spec.format === 'jpeg' ? 'image/jpeg' : 'image/png' }));
      });
      const requests: LoadRequest[] = specs.slice(0, 48).map((spec, i) => ({
        path: '/v2/models/ocr/infer', headers: { 'content-type': spec.format === 'jpeg' ? 'image/jpeg' : 'image/png' }, body: new Uint8Array(images[i]),
      }));
      // CPU per image of each level: the server's processes over the level, divided by the images it answered.
      const cpuPerImage = new Map<LoadResult, ServerCpu & { total: number }>();
      const level = async (c: number, count = perLevel[c]): Promise<LoadResult> => {
        const base = { url: server.url, requests, concurrency: c, requestTimeoutMs: 120_000 };
        await runLoadInChild({ ...base, maxRequests: c, maxDurationMs: capMs });
        const cpu0 = serverCpu();
        const r = await runLoadInChild({ ...base, maxRequests: count, maxDurationMs: capMs });
        cpuPerImage.set(r, cpuPer(cpu0, serverCpu(), r.ok));
        s.log(`job: synchronous c=${c}: ${fmt(r.throughput)} images/s p50 ${fmt(r.latency.p50)} ms, server ${cpuText(cpuPerImage.get(r)!)} answered`);
        return r;
      };
      const sync4 = await level(4);
      const sync16 = await level(16);
      const alone = await level(1);

      s.log(`job: submitting ${n} images (inputs.prefix ${INPUT_PREFIX})`);
      const t0 = performance.now();
      const sub = await fetch(`${server.url}/v2/models/ocr/jobs`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: { prefix: INPUT_PREFIX }, output: { prefix: OUTPUT_PREFIX } }),
      });
      const submitted = (await sub.json()) as JobStatus & { error?: string };
      if (sub.status !== 202) throw new Error(`job submit: HTTP ${sub.status} ${submitted.error ?? ''}`);
      const statusUrl = `${server.url}/v2/jobs/${submitted.id}`;
      const ended = (st: JobStatus) => st.state !== 'queued' && st.state !== 'running';
      // The synchronous endpoint at c=1 while the job's items fill the stages.
      let st = await getJson<JobStatus>(statusUrl);
      while (st.state === 'queued') { await new Promise((r) => setTimeout(r, 200)); st = await getJson<JobStatus>(statusUrl); }
      const during = await level(1);
      st = await getJson<JobStatus>(statusUrl);
      const overlapped = !ended(st);
      // The job alone, as the synchronous levels ran: its rate and CPU per image from the end of the c=1
      // level (whose requests went first in every stage) to its last outcome.
      const cpuFrom = { cpu: serverCpu(), done: st.counts.succeeded + st.counts.failed, at: Date.now() };
      while (!ended(st)) {
        await new Promise((r) => setTimeout(r, 500));
        st = await getJson<JobStatus>(statusUrl);
      }
      const aloneItems = st.counts.succeeded + st.counts.failed - cpuFrom.done;
      const jobCpuParts = cpuPer(cpuFrom.cpu, serverCpu(), aloneItems);
      const jobCpu = jobCpuParts.total;
      // finishedAt is this process's clock too (the server runs here).
      const aloneS = ((st.finishedAt ? Date.parse(st.finishedAt) : Date.now()) - cpuFrom.at) / 1000;
      const aloneRate = overlapped && aloneItems >= Math.min(50, n / 4) ? aloneItems / aloneS : NaN;
      const wallS = (performance.now() - t0) / 1000;
      if (st.state !== 'succeeded') throw new Error(`job ended ${st.state}: ${st.error ?? JSON.stringify(st.counts)}`);
      const jobRate = st.throughputPerSecond ?? 0;
      s.log(`job: ${n} images ${st.state} in ${fmt(wallS)} s from submit; ${fmt(jobRate)} images/s from first take-up to last outcome, `
        + `${fmt(aloneRate)} images/s alone (${aloneItems} images after the c=1 level), ${cpuText(jobCpuParts)}`);

      // Results against the rendered text.
      const text = await (await fetch(`${statusUrl}/results`)).text();
      const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ResultLine);
      let edits = 0;
      let chars = 0;
      let failed = 0;
      for (const line of lines) {
        const i = Number(/(\d+)\.\w+$/.exec(line.key)?.[1]);
        if ('error' in line) { failed++; continue; }
        const out = (line.outputs as { name: string; data: string[] }[]).find((o) => o.name === 'text')?.data ?? [];
        const score = scoreLines(specs[i], out.map((t) => ({ text: t, confidence: 1, box: [] })));
        edits += score.edits;
        chars += score.chars;
      }
      const cer = chars ? edits / chars : NaN;

      await server.env.runs.flush();
      const records = (await server.env.runs.listByPipeline('ocr', n + 500)).filter((r) => r.jobId === submitted.id);
      const shares = stageShares(records);
      const itemLatency = summarize(records.map((r) => r.durationMs));

      const cpuNote = (r: LoadResult, ...more: (string | undefined)[]) => [cpuPerImage.has(r) ? cpuText(cpuPerImage.get(r)!) : undefined, ...more].filter(Boolean).join('; ');
      const rows: BenchRow[] = [
        loadRow(SCENARIO, 'synchronous /infer', 'images/s', sync4, cpuNote(sync4, failureNote(sync4))),
        loadRow(SCENARIO, 'synchronous /infer', 'images/s', sync16, cpuNote(sync16, failureNote(sync16))),
        loadRow(SCENARIO, 'synchronous /infer, alone', 'images/s', alone, cpuNote(alone, failureNote(alone))),
        loadRow(SCENARIO, 'synchronous /infer, job running', 'images/s', during, [failureNote(during), overlapped ? '' : 'the job ended before this level did'].filter(Boolean).join('; ') || undefined),
        {
          scenario: SCENARIO, system: `job of ${n} images (SQS-fed consumer)`, concurrency: inFlightFor(manifest), throughput: jobRate, unit: 'images/s',
          p50Ms: itemLatency.p50, p99Ms: itemLatency.p99, samples: lines.length, failed, cer,
          note: `first take-up to last outcome, the c=1 level included; ${fmt(wallS)} s from submit to the last outcome; concurrency = items in flight; latency = each item's run`,
        },
        {
          scenario: SCENARIO, system: `job of ${n} images, alone`, concurrency: inFlightFor(manifest), throughput: aloneRate, unit: 'images/s',
          p50Ms: NaN, p99Ms: NaN, samples: aloneItems, failed: 0,
          note: `${cpuText(jobCpuParts)}; the ${aloneItems} images after the c=1 level ended, to the last outcome`,
        },
      ];
      const best = Math.max(sync4.throughput, sync16.throughput);
      // The job alone against the endpoint alone; without an alone part (a job too short), the whole job's rate.
      const jobBest = Number.isFinite(aloneRate) ? aloneRate : jobRate;
      const targets: TargetCheck[] = [
        {
          target: 'OCR job images/s >= the synchronous endpoint\'s best of c=4 and c=16',
          measured: `${fmt(jobBest)} vs ${fmt(best)} images/s = ${fmt(ratio(jobBest, best))}x (job alone; the whole job, the c=1 level in it: ${fmt(jobRate)} = ${fmt(ratio(jobRate, best))}x)`,
          met: jobBest >= best,
        },
        { target: 'every image has its one result line', measured: `${lines.length} lines for ${n} images, ${failed} failed`, met: lines.length === n && failed === 0 },
      ];
      return {
        name: SCENARIO,
        title: `Batch job: ${n} OCR images through the queue vs the synchronous endpoint`,
        rows,
        targets,
        notes: [
          `${n} pages rendered as the OCR tests render them (ocrSampleSpecs: 1 to 4 lines, three DejaVu faces, PNG and JPEG), uploaded under ${INPUT_PREFIX} and submitted as one job (inputs.prefix). `
          + `The synchronous levels cycle the first ${requests.length} of the same images; requests per level c=4: ${perLevel[4]}, c=16: ${perLevel[16]}, c=1: ${perLevel[1]}. `
          + 'S3, DynamoDB and SQS emulators run in a process of their own (on AWS they are not in the gateway\'s process; `npm start` runs them in it), the same for both; their CPU is in the CPU per image. '
          + 'The whole job\'s rate is its own status\' throughputPerSecond: items with an outcome over the time from the first take-up to the last outcome, '
          + 'which includes the c=1 level run while the job ran (its requests go first in every stage). The job alone is the part after that level, as the synchronous levels ran alone; the target compares it. '
          + 'CPU per image: user + system of this process (gateway, function stages), the stage workers and the emulators\' process (/proc) over a level, over the images it answered; not the load generator\'s. '
          + `Job ${fmt(jobCpu)} ms vs synchronous c=4 ${fmt(cpuPerImage.get(sync4)?.total ?? NaN)}, c=16 ${fmt(cpuPerImage.get(sync16)?.total ?? NaN)} ms (${fmt(ratio(jobCpu, cpuPerImage.get(sync16)?.total ?? NaN))}x c=16's); `
          + `of the difference from c=16, gateway ${fmt(jobCpuParts.gateway - (cpuPerImage.get(sync16)?.gateway ?? NaN))}, workers ${fmt(jobCpuParts.workers - (cpuPerImage.get(sync16)?.workers ?? NaN))}, emulators ${fmt(jobCpuParts.emulators - (cpuPerImage.get(sync16)?.emulators ?? NaN))} ms.`,
          `c=1 p50 alone ${fmt(alone.latency.p50)} ms, while the job ran ${fmt(during.latency.p50)} ms (${fmt(ratio(during.latency.p50, alone.latency.p50))}x).`,
          `Character error rate of the job's results against the rendered text: ${fmt(cer * 100)}%.`,
          `Per image, from the job's ${records.length} run records (each stage's compute, a shared batch split over its items): `
          + `${shares.map((x) => `${x.stage} ${fmt(x.computeMsPerImage)} ms${x.itemsPerImage > 1.05 ? ` (${fmt(x.itemsPerImage, 1)} items)` : ''}`).join(', ')}; `
          + `item run p50 ${fmt(itemLatency.p50)} ms. docs/jobs.md turns these into the cost of a job on Lambda.`,
        ],
      };
    } finally {
      await server.close();
    }
  });
}
