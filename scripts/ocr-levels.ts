/**
 * OCR through the gateway at a sequence of concurrency levels, in that order,
 * with the gateway's CPU and garbage collections per image at each level:
 * how the gateway behaves after a heavier level, which the benchmark's fixed
 * order (1, 4, 16) does not show. The server is the benchmark's (the real
 * `ensemble serve`, emulators in a process of their own, stage workers).
 *
 *   npx tsx scripts/ocr-levels.ts                 # levels 4,16,4; 48 requests each
 *   LEVELS=1,16,1 REQUESTS=24 npx tsx scripts/ocr-levels.ts
 *   ENSEMBLE_HEAP_GROWING_PERCENT=0 npx tsx scripts/ocr-levels.ts   # V8's own heap growth
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startBenchServer } from '../packages/tools/src/bench/bench-server.js';
import { runLoadInChild } from '../packages/tools/src/bench/load.js';
import { ocrSamples } from '../packages/tools/src/bench/ocr-images.js';

// As bin/ensemble.mjs: Node 20 is supported here until the SDK drops it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const levels = (process.env.LEVELS ?? '4,16,4').split(',').map(Number);
const requests = Number(process.env.REQUESTS ?? 48);
if (levels.some((c) => !Number.isInteger(c) || c < 1) || !Number.isInteger(requests) || requests < 1) {
  throw new Error('LEVELS must be positive integers separated by commas, REQUESTS a positive integer');
}

const gcs = { minor: 0, major: 0, minorMs: 0, majorMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) { gcs.major++; gcs.majorMs += e.duration; }
    else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) { gcs.minor++; gcs.minorMs += e.duration; }
  }
}).observe({ entryTypes: ['gc'] });

const dataDir = await mkdtemp(join(tmpdir(), 'ensemble-ocr-levels-'));
const server = await startBenchServer({ dataDir, modelsDir: join(root, 'models'), pipelines: ['ocr'], log: () => undefined });
try {
  const bodies = (await ocrSamples()).map((s) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(s.png) }));
  const base = { url: server.url, requests: bodies, requestTimeoutMs: 120_000, maxDurationMs: 180_000 };
  await runLoadInChild({ ...base, concurrency: 4, maxRequests: 24 });
  console.log(`heap growing percent: ${process.env.ENSEMBLE_HEAP_GROWING_PERCENT ?? 'default (serve/heap-growth.ts)'}`);
  console.log('| level | images/s | p50 ms | gateway CPU ms/image | minor GCs | major GCs | GC pause ms/image | RSS MB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of levels) {
    const before = { ...gcs };
    const cpu = process.cpuUsage();
    const r = await runLoadInChild({ ...base, concurrency: c, maxRequests: requests });
    await new Promise((done) => setImmediate(done));
    const used = process.cpuUsage(cpu);
    const ok = Math.max(1, r.ok);
    const pause = (gcs.minorMs - before.minorMs + gcs.majorMs - before.majorMs) / ok;
    console.log(`| c=${c} | ${r.throughput.toFixed(2)} | ${r.latency.p50.toFixed(0)} | ${((used.user + used.system) / 1000 / ok).toFixed(1)} | ${gcs.minor - before.minor} | ${gcs.major - before.major} | ${pause.toFixed(2)} | ${(process.memoryUsage().rss / 1e6).toFixed(0)} |`);
    if (r.failed) console.log(`  ${r.failed} failed: ${r.errors.slice(0, 3).join('; ')}`);
  }
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
