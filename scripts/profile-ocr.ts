/**
 * The OCR pipeline through the gateway (the benchmark's server: the real
 * `ensemble serve` stack, emulators in a process of their own, stage workers)
 * under closed-loop load with the CPU profiler on the gateway's process:
 * where the gateway's own CPU per image goes at the concurrency the
 * model-compute bound is measured at (docs/benchmarks.md). The profile is
 * summarised by part and function as `ensemble bench --profile` does.
 *
 *   npx tsx scripts/profile-ocr.ts                          # c=16, 96 images, /tmp/ocr.cpuprofile
 *   CONCURRENCY=1 REQUESTS=24 OUT=/tmp/o1.cpuprofile npx tsx scripts/profile-ocr.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from '../packages/tools/src/bench/bench-server.js';
import { ocrSamples } from '../packages/tools/src/bench/ocr-images.js';
import { profileUnderLoad } from '../packages/tools/src/bench/profile.js';

// As bin/ensemble.mjs: Node 20 is supported here until the SDK drops it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const concurrency = Number(process.env.CONCURRENCY ?? 16);
const requests = Number(process.env.REQUESTS ?? 96);
if (![concurrency, requests].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('CONCURRENCY and REQUESTS must be positive integers');

const dataDir = await mkdtemp(join(tmpdir(), 'ensemble-profile-ocr-'));
const server = await startBenchServer({ dataDir, modelsDir: join(root, 'models'), pipelines: ['ocr'], log: () => undefined });
try {
  const bodies = (await ocrSamples()).map((s) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(s.png) }));
  console.log(await profileUnderLoad({
    url: server.url, out: process.env.OUT ?? '/tmp/ocr.cpuprofile', concurrency, label: 'gateway (ocr)',
    requests: bodies, warmRequests: 48, warmMs: 60_000, maxRequests: requests, durationMs: 180_000,
  }));
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
