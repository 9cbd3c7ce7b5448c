/**
 * The hand-written baseline server of the tiny scenario (one Hono route and
 * two session.run calls) under the same load as `ensemble bench --profile`
 * gives the gateway, with the CPU profiler on: the profile to set beside the
 * gateway's, part by part (what the same node:http and Hono code costs per
 * request in each).
 *
 *   npx tsx scripts/profile-baseline.ts                       # c=64, 8 s, /tmp/baseline.cpuprofile
 *   CONCURRENCY=1 OUT=/tmp/b1.cpuprofile npx tsx scripts/profile-baseline.ts
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { OnnxStage } from '../packages/core/src/manifest/types.js';
import { startBaselineServer } from '../packages/tools/src/bench/baseline-server.js';
import { profileUnderLoad } from '../packages/tools/src/bench/profile.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const concurrency = Number(process.env.CONCURRENCY ?? 64);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('CONCURRENCY must be a positive integer');

const manifest = await loadManifest(join(root, 'models', 'demo', 'pipeline.yaml'));
await buildIfNeeded(manifest, (s) => console.error(s));
const src = (name: string) => (manifest.stages.find((x) => x.name === name) as OnnxStage).weights.source!;
const server = await startBaselineServer({ branchA: src('branch_a'), branchB: src('branch_b') });
try {
  console.log(await profileUnderLoad({ url: server.url, out: process.env.OUT ?? '/tmp/baseline.cpuprofile', concurrency, label: 'baseline' }));
} finally {
  await server.close();
}
