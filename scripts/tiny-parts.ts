/**
 * What the tiny scenario's run records cost, measured by leaving parts out:
 * the benchmark's server for the demo pipeline (emulators in a process of
 * their own, as `npm run bench` runs it) and the hand-written baseline, loaded
 * at one concurrency for a few seconds per level, the variants alternated
 * round by round so the machine's drift hits them alike:
 *
 *   records    as served: the journal (fsynced group commits) and DynamoDB
 *   journal    the journal only: its sink answers at once, nothing reaches DynamoDB
 *   none       no run record at all
 *   baseline   the hand-written Hono + session.run server
 *
 * For each: this process's CPU per request (the servers run in it; the load
 * generator and the emulators do not) and the sustained rate, the record
 * backlog's drain after the level counted, as the benchmark's target counts it.
 * The variants other than `records` reach into the store (its sink and put)
 * and exist only in this measurement; a server never runs without its records.
 *
 *   npx tsx scripts/tiny-parts.ts                    # c=64, 3 rounds of 4 s per variant
 *   CONCURRENCY=8 ROUNDS=5 npx tsx scripts/tiny-parts.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { OnnxStage } from '../packages/core/src/manifest/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { startBaselineServer } from '../packages/tools/src/bench/baseline-server.js';
import { startBenchServer } from '../packages/tools/src/bench/bench-server.js';
import { runLoadInChild } from '../packages/tools/src/bench/load.js';
import { demoRequests } from '../packages/tools/src/bench/scenarios/tiny.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const concurrency = Number(process.env.CONCURRENCY ?? 64);
const rounds = Number(process.env.ROUNDS ?? 3);
if (![concurrency, rounds].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('CONCURRENCY and ROUNDS must be positive integers');

const manifest = await loadManifest(join(root, 'models', 'demo', 'pipeline.yaml'));
await buildIfNeeded(manifest, (s) => console.error(s));
const src = (name: string) => (manifest.stages.find((x) => x.name === name) as OnnxStage).weights.source!;
const dataDir = await mkdtemp(join(tmpdir(), 'ensemble-tiny-parts-'));
const baseline = await startBaselineServer({ branchA: src('branch_a'), branchB: src('branch_b') });
const server = await startBenchServer({ dataDir, modelsDir: join(root, 'models'), pipelines: ['demo'] });

/** The journal's private parts this measurement swaps. */
interface Swappable {
  put(r: RunRecord): Promise<void>;
  sink: unknown;
}
const store = server.env.runs as unknown as Swappable;
const asServed = { put: store.put.bind(store), sink: store.sink };
const answersAtOnce = { write: async () => 'written', get: async () => undefined, listByPipeline: async () => [], flush: async () => undefined };
const variants: Record<string, (() => void) | undefined> = {
  baseline: undefined,
  records: () => { store.put = asServed.put; store.sink = asServed.sink; },
  journal: () => { store.put = asServed.put; store.sink = answersAtOnce; },
  none: () => { store.put = () => Promise.resolve(); store.sink = asServed.sink; },
};

const requests = demoRequests();
const budget = { maxRequests: 40_000, maxDurationMs: 4_000 };
const results: Record<string, { cpuMs: number; sustained: number }[]> = {};
try {
  await runLoadInChild({ url: baseline.url, requests, concurrency, maxRequests: 3_000, maxDurationMs: 3_000 });
  await runLoadInChild({ url: server.url, requests, concurrency, maxRequests: 3_000, maxDurationMs: 3_000 });
  await server.env.runs.flush();
  for (let round = 1; round <= rounds; round++) {
    for (const [name, apply] of Object.entries(variants)) {
      apply?.();
      const u0 = process.cpuUsage();
      const r = await runLoadInChild({ url: apply ? server.url : baseline.url, requests, concurrency, ...budget });
      const t0 = performance.now();
      if (apply) await server.env.runs.flush();
      const drainMs = performance.now() - t0;
      const u = process.cpuUsage(u0);
      const x = { cpuMs: (u.user + u.system) / 1000 / Math.max(1, r.ok), sustained: (r.ok * 1000) / (r.durationMs + drainMs) };
      (results[name] ??= []).push(x);
      console.error(`round ${round} ${name}: ${r.throughput.toFixed(0)} req/s while loaded, ${x.sustained.toFixed(0)} sustained, ${x.cpuMs.toFixed(3)} ms CPU/req`);
    }
  }
} finally {
  variants.records!();
  await server.close();
  await baseline.close();
  await rm(dataDir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`\nc=${concurrency}, ${rounds} rounds (median; each round's values in brackets)\n`);
console.log('| variant | CPU per request (ms) | sustained req/s |');
console.log('| --- | ---: | ---: |');
for (const [name, xs] of Object.entries(results)) {
  const cpu = xs.map((x) => x.cpuMs), rate = xs.map((x) => x.sustained);
  console.log(`| ${name} | ${median(cpu).toFixed(3)} [${cpu.map((v) => v.toFixed(3)).join(', ')}] | ${median(rate).toFixed(0)} [${rate.map((v) => v.toFixed(0)).join(', ')}] |`);
}
process.exit(0);
