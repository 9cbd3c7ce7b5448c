import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { EnsembleError } from '@ensemble/core/errors.js';
import { runLoadInChild } from '../load.js';
import { ocrSamples } from '../ocr-images.js';
import { peakSampler, sampleServer, type ProcessSample } from '../process-memory.js';
import { markdownTable } from '../report.js';
import type { BenchSettings, ScenarioResult } from '../types.js';
import { failureNote, fmt, loadRow, processCpuMs, withTempDir } from '../util.js';

const SCENARIO = 'memory';
/** What `npm start` should stay under at rest, every process counted. */
export const IDLE_TARGET_MB = 800;
/** The rest after /v2/health/ready before the idle sample: start-up garbage collected, emulators settled. */
const SETTLE_MS = 10_000;
const READY_TIMEOUT_MS = 300_000;
const LOAD_CONCURRENCY = 16;
const SAMPLE_EVERY_MS = 200;

interface Serve { child: ChildProcess; url: string; stop(): Promise<void> }

/**
 * `node bin/ensemble.mjs serve` as a child process, exactly what `npm start`
 * runs, on a fresh data folder, with the local emulators (AWS settings from
 * this environment removed). Resolves once it prints the address it serves on.
 */
function startServe(root: string, dataDir: string, log: (s: string) => void): Promise<Serve> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ENSEMBLE_') || k.startsWith('AWS_') || k.startsWith('OTEL_')) delete env[k];
  const child = spawn(process.execPath, [join(root, 'bin/ensemble.mjs'), 'serve', '--port', '0', '--data', dataDir, '--quiet'], {
    cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => { clearTimeout(hard); resolve(); });
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { void stop(); reject(new EnsembleError(`ensemble serve printed no address within ${READY_TIMEOUT_MS / 1000} s:\n${out.slice(-2000)}`)); }, READY_TIMEOUT_MS);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /serving .* on (http:\/\/[^\s]+) \(/.exec(out);
      if (m) { clearTimeout(timer); log(`  ensemble serve (pid ${child.pid}) on ${m[1]}`); resolve({ child, url: m[1], stop }); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new EnsembleError(`ensemble serve exited (${signal ?? `code ${code}`}) before serving:\n${out.slice(-2000)}`)); });
  });
}

async function waitReady(url: string): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`${url}/v2/health/ready`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new EnsembleError(`${url}/v2/health/ready did not answer 200 within ${READY_TIMEOUT_MS / 1000} s`);
}

const sum = (xs: ProcessSample[]) => xs.reduce((a, s) => a + s.rssMb, 0);
const mb = (n: number) => `${Math.round(n).toLocaleString('en-US')} MB`;

/** One row per role (workers of one stage counted together, with how many there are). */
function byRole(idle: ProcessSample[], peak: Map<number, ProcessSample>): string[][] {
  const roles = [...new Set(idle.map((s) => s.role))].sort((a, b) => (a === 'gateway' ? -1 : b === 'gateway' ? 1 : a.localeCompare(b)));
  return roles.map((role) => {
    const procs = idle.filter((s) => s.role === role);
    const peaks = procs.map((s) => peak.get(s.pid)?.rssMb ?? s.rssMb);
    return [role, String(procs.length), procs.map((s) => fmt(s.rssMb, 0)).join(' + '), mb(sum(procs)), peaks.map((p) => fmt(p, 0)).join(' + '), mb(peaks.reduce((a, b) => a + b, 0))];
  });
}

/**
 * Memory of `npm start` with every bundled pipeline: each process's RSS at
 * rest, then its peak under OCR load at concurrency 16.
 */
export async function runMemoryScenario(s: BenchSettings): Promise<ScenarioResult> {
  const loadSeconds = s.quick ? 10 : 30;
  const samples = await ocrSamples();
  return withTempDir('ensemble-bench-memory-', async (dir) => {
    const serve = await startServe(s.root, join(dir, 'data'), s.log);
    try {
      await waitReady(serve.url);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const gatewayPid = serve.child.pid!;
      const idle = sampleServer(gatewayPid);
      const workers = idle.filter((p) => p.role.startsWith('worker '));
      const others = idle.filter((p) => p.role !== 'gateway' && !p.role.startsWith('worker '));
      const idleTotal = sum(idle);
      s.log(`  idle: gateway ${mb(sum(idle.filter((p) => p.role === 'gateway')))}, ${workers.length} workers ${mb(sum(workers))}, total ${mb(idleTotal)}`);

      const requests = samples.map((smp) => ({ path: '/v2/models/ocr/infer', headers: { 'content-type': 'image/png' }, body: new Uint8Array(smp.png) }));
      const pids = idle.map((p) => p.pid);
      const cpuNow = () => pids.reduce((a, pid) => a + (processCpuMs(pid) ?? 0), 0);
      const sampler = peakSampler(gatewayPid, SAMPLE_EVERY_MS);
      // CPU of the warm-up is in it too: counted over every image sent, it is the figure a busy machine does not move.
      const cpu0 = cpuNow();
      const load = await runLoadInChild({
        url: serve.url, requests, concurrency: LOAD_CONCURRENCY, maxRequests: 1_000_000, maxDurationMs: loadSeconds * 1000, warmupRequests: LOAD_CONCURRENCY,
      });
      const peak = sampler.stop();
      const cpuPerImage = (cpuNow() - cpu0) / Math.max(1, load.ok + LOAD_CONCURRENCY);
      const peakOf = (f: (p: ProcessSample) => boolean) => [...peak.perProcess.values()].filter(f).reduce((a, p) => a + p.rssMb, 0);
      const gatewayPeak = peakOf((p) => p.role === 'gateway');
      const workersPeak = peakOf((p) => p.role.startsWith('worker '));
      s.log(`  under OCR load (c=${LOAD_CONCURRENCY}, ${loadSeconds} s): ${fmt(load.throughput)} images/s, CPU ${fmt(cpuPerImage)} ms/image; peak gateway ${mb(gatewayPeak)}, workers ${mb(workersPeak)}`);

      const table = markdownTable(
        ['process', 'count', 'idle RSS (MB, each)', 'idle total', `peak under OCR load c=${LOAD_CONCURRENCY} (MB, each)`, 'peak total'],
        [...byRole(idle, peak.perProcess), ['all', String(idle.length), '', mb(idleTotal), '', `${mb(peak.peakTotalMb)} (at one instant)`]],
      );
      return {
        name: SCENARIO,
        title: 'Memory of npm start (demo, ocr, ocr-split)',
        rows: [loadRow(SCENARIO, 'ensemble serve (npm start), RSS sampled', 'images/s', load,
          [`peak RSS gateway ${mb(gatewayPeak)}, workers ${mb(workersPeak)}; CPU ${fmt(cpuPerImage)} ms/image (gateway + workers)`, failureNote(load)].filter(Boolean).join('; '))],
        targets: [{
          target: `npm start idle (gateway + stage workers + any other child, ${SETTLE_MS / 1000} s after ready): under ${mb(IDLE_TARGET_MB)}`,
          measured: `${mb(idleTotal)} (gateway ${mb(sum(idle.filter((p) => p.role === 'gateway')))}, ${workers.length} workers ${mb(sum(workers))}${others.length ? `, other ${mb(sum(others))}` : ''})`,
          met: idleTotal < IDLE_TARGET_MB,
        }],
        notes: [
          table,
          `\`node bin/ensemble.mjs serve --port 0 --data <fresh folder> --quiet\` (what \`npm start\` runs) as a child process of the benchmark, with the local emulators in the gateway's process as \`npm start\` has them. `
          + `Idle: one sample of every process's RSS (VmRSS from /proc) ${SETTLE_MS / 1000} s after /v2/health/ready answered 200; a worker is known by its argv (\`ensemble:<stage>\`). `
          + `Under load: raw PNG bodies of the OCR scenario's ${samples.length} rendered pages to /v2/models/ocr/infer at concurrency ${LOAD_CONCURRENCY} for ${loadSeconds} s from a load generator process, `
          + `every process's RSS sampled every ${SAMPLE_EVERY_MS} ms and each one's peak kept; "at one instant" is the largest sum of one sample. RSS counts shared pages (the node binary, libonnxruntime) in every process that maps them, as \`ps\` does.`,
        ],
      };
    } finally {
      await serve.stop();
    }
  });
}
