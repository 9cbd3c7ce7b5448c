/**
 * The hand-written baseline server of the tiny scenario (one Hono route and
 * two session.run calls) under the same load as `ensemble bench --profile`
 * gives the gateway, with the CPU profiler on: the profile to set beside the
 * gateway's, function by function (what the same node:http and Hono code
 * costs per request in each).
 *
 *   npx tsx scripts/profile-baseline.ts                       # c=64, 8 s, /tmp/baseline.cpuprofile
 *   CONCURRENCY=1 OUT=/tmp/b1.cpuprofile npx tsx scripts/profile-baseline.ts
 */
import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { OnnxStage } from '../packages/core/src/manifest/types.js';
import { startBaselineServer } from '../packages/tools/src/bench/baseline-server.js';
import { runLoadInChild } from '../packages/tools/src/bench/load.js';
import { demoRequests } from '../packages/tools/src/bench/scenarios/tiny.js';
import { renderProfileSummary, summarizeProfile, type CpuProfile } from '../packages/tools/src/bench/cpuprofile.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const concurrency = Number(process.env.CONCURRENCY ?? 64);
const out = process.env.OUT ?? '/tmp/baseline.cpuprofile';
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('CONCURRENCY must be a positive integer');

const manifest = await loadManifest(join(root, 'models', 'demo', 'pipeline.yaml'));
await buildIfNeeded(manifest, (s) => console.error(s));
const src = (name: string) => (manifest.stages.find((x) => x.name === name) as OnnxStage).weights.source!;
const server = await startBaselineServer({ branchA: src('branch_a'), branchB: src('branch_b') });
const session = new Session();
try {
  const requests = demoRequests();
  // Warm first, as the gateway's profile does.
  await runLoadInChild({ url: server.url, requests, concurrency, maxRequests: 3000, maxDurationMs: 3000 });
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const u0 = process.cpuUsage();
  const r = await runLoadInChild({ url: server.url, requests, concurrency, maxRequests: 1_000_000, maxDurationMs: 8000 });
  const u = process.cpuUsage(u0);
  const { profile } = await session.post('Profiler.stop') as { profile: CpuProfile };
  await writeFile(out, JSON.stringify(profile));
  console.error(`baseline c=${concurrency}: ${r.throughput.toFixed(0)} req/s, ${r.ok} ok, ${((u.user + u.system) / 1000 / Math.max(1, r.ok)).toFixed(3)} ms CPU/req (profiler on); wrote ${out}`);
  console.log(renderProfileSummary(summarizeProfile(profile)));
} finally {
  session.disconnect();
  await server.close();
}
