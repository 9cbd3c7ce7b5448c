import { join } from 'node:path';
import { loadManifest } from '../../manifest/load.js';
import { buildIfNeeded } from '../../pipelines/build.js';
import { startServer } from '../../serve/server.js';
import type { OnnxStage } from '../../manifest/types.js';
import { startBaselineServer } from '../baseline-server.js';
import { runLoadInChild } from '../load.js';
import type { BenchSettings, BenchRow, LoadRequest, LoadResult, ScenarioResult, TargetCheck } from '../types.js';
import { countRunRecords, failureNote, fmt, loadRow, ratio, withTempDir } from '../util.js';

export const TINY_CONCURRENCY = [1, 8, 64];
const SCENARIO = 'tiny';

/** A few distinct one-row requests, so no layer can cache an answer. */
function demoRequests(): LoadRequest[] {
  return Array.from({ length: 16 }, (_, i) => ({
    path: '/v2/models/demo/infer',
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [i / 8 - 1, 0.5, -0.25 * (i % 3), 1 - i / 16] }] }),
  }));
}

/**
 * The demo pipeline through the whole gateway (validation, DAG, per-stage
 * batching in worker processes, a run record per request in DynamoDB) against
 * a hand-written Hono route calling session.run on the same two models.
 */
export async function runTinyScenario(s: BenchSettings): Promise<ScenarioResult> {
  const manifest = await loadManifest(join(s.root, 'models', 'demo', 'pipeline.yaml'));
  await buildIfNeeded(manifest, s.log);
  const src = (name: string) => (manifest.stages.find((x) => x.name === name) as OnnxStage).weights.source!;
  const requests = demoRequests();
  const budget = s.quick ? { maxRequests: 3000, maxDurationMs: 2500, warmupRequests: 200 } : { maxRequests: 40_000, maxDurationMs: 8000, warmupRequests: 500 };

  return withTempDir('ensemble-bench-tiny-', async (dataDir) => {
    const baseline = await startBaselineServer({ branchA: src('branch_a'), branchB: src('branch_b') });
    const server = await startServer({ port: 0, dataDir, modelsDir: join(s.root, 'models'), pipelines: ['demo'], log: () => undefined });
    const rows: BenchRow[] = [];
    const results: { c: number; base: LoadResult; ens: LoadResult; drainMs: number }[] = [];
    let records = 0;
    try {
      for (const c of TINY_CONCURRENCY) {
        // Alternate the two systems level by level, so drift in the machine's background load hits both alike.
        const base = await runLoadInChild({ url: baseline.url, requests, concurrency: c, ...budget });
        s.log(`tiny c=${c} baseline: ${fmt(base.throughput)} req/s p50 ${fmt(base.latency.p50)} ms p99 ${fmt(base.latency.p99)} ms`);
        const ens = await runLoadInChild({ url: server.url, requests, concurrency: c, ...budget });
        // Run records are written off the request path; the time to drain what is still queued belongs to this level.
        const t0 = performance.now();
        await server.env.runs.flush();
        const drainMs = performance.now() - t0;
        s.log(`tiny c=${c} ensemble: ${fmt(ens.throughput)} req/s p50 ${fmt(ens.latency.p50)} ms p99 ${fmt(ens.latency.p99)} ms (records drained in ${fmt(drainMs)} ms)`);
        results.push({ c, base, ens, drainMs });
        rows.push(loadRow(SCENARIO, 'baseline (hand-written Hono + session.run)', 'req/s', base, failureNote(base)));
        rows.push(loadRow(SCENARIO, 'ensemble (gateway + batching + run records)', 'req/s', ens,
          [failureNote(ens), drainMs > 50 ? `record backlog drained ${fmt(drainMs)} ms after the run` : undefined].filter(Boolean).join('; ') || undefined));
      }
      records = await countRunRecords(server.env.dynamo, server.env.settings.runsTable);
    } finally {
      await server.close();
      await baseline.close();
    }

    const top = results[results.length - 1];
    // Throughput with the record backlog's drain time counted, so records are "written", not just queued.
    const sustained = (top.ens.ok * 1000) / (top.ens.durationMs + top.drainMs);
    const r = ratio(sustained, top.base.throughput);
    const targets: TargetCheck[] = [{
      target: `tiny pipeline at concurrency ${top.c}: >= 0.8x the hand-written baseline's req/s`,
      measured: `${fmt(sustained)} vs ${fmt(top.base.throughput)} req/s = ${fmt(r)}x`,
      met: r >= 0.8,
    }];
    const sentTotal = results.reduce((n, x) => n + x.ens.sent + (budget.warmupRequests ?? 0), 0);
    return {
      name: SCENARIO,
      title: 'Tiny pipeline (demo: two dense branches + average)',
      rows,
      targets,
      notes: [
        `Both servers answer the same Open Inference Protocol JSON requests (one row each) from a load generator in its own process, closed loop over keep-alive HTTP/1.1 on 127.0.0.1. `
        + `The baseline parses the body, runs both ONNX sessions in its own process (1 intra-op thread each) and averages; `
        + `Ensemble validates the request, walks the DAG, batches each stage (max_size ${manifest.stages[0].batch.maxSize}, max_delay_ms ${manifest.stages[0].batch.maxDelayMs}) in worker processes and writes a run record per request to DynamoDB (dynalite, in the gateway's process).`,
        `Run records written during the scenario: ${records} (requests sent including warm-up: ${sentTotal}). The ensemble throughput in the target counts the time to drain the record queue after each level.`,
      ],
    };
  });
}
