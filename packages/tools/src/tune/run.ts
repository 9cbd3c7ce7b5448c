import { availableParallelism } from 'node:os';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { loadManifest } from '@ensemble/core/manifest/load.js';
import { buildIfNeeded } from '../pipelines/build.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { captureStageInputs, localWeights, onnxDependencies, onnxStages } from './capture.js';
import { DEFAULT_BATCH_SIZES, LIMITS, machineSplits, profileStage, type ProfileLimits } from './profile.js';
import { propose } from './propose.js';
import { readSampleRequests, syntheticRequests } from './samples.js';
import type { Proposal, Split, StageProfile } from './types.js';
import { writeProposal } from './write.js';

export interface TuneOptions {
  manifestFile: string;
  budgetMs: number;
  /** Sample request files; none: synthesized from the input specs. */
  requestFiles?: string[];
  /** Only these ONNX stages (default: all). */
  stages?: string[];
  batchSizes?: number[];
  splits?: Split[];
  quick?: boolean;
  /** Overrides the measuring limits (tests). */
  limits?: ProfileLimits;
  write?: boolean;
  log?: (s: string) => void;
}

export interface TuneResult {
  manifest: Manifest;
  profiles: StageProfile[];
  proposal: Proposal;
  written: boolean;
}

/**
 * `ensemble tune`: capture what each ONNX stage receives from sample
 * requests, profile every stage alone over batch sizes and instance × thread
 * splits, propose the settings with the most throughput under the p99 budget,
 * and (with write) put them in the manifest.
 */
export async function tune(o: TuneOptions): Promise<TuneResult> {
  const log = o.log ?? (() => undefined);
  const manifest = await loadManifest(o.manifestFile);
  await buildIfNeeded(manifest, log);
  const all = onnxStages(manifest);
  for (const s of o.stages ?? []) if (!all.some((x) => x.name === s)) throw new EnsembleError(`pipeline '${manifest.name}' has no ONNX stage '${s}' (it has ${all.map((x) => x.name).join(', ')})`, 'usage');
  const chosen = o.stages?.length ? all.filter((s) => o.stages!.includes(s.name)) : all;
  if (!chosen.length) throw new EnsembleError(`pipeline '${manifest.name}' has no ONNX stage to tune`, 'usage');

  const requests = o.requestFiles?.length ? await readSampleRequests(manifest, o.requestFiles) : syntheticRequests(manifest);
  const weights = localWeights(manifest);
  log(`capturing stage inputs from ${requests.length} sample request(s)`);
  const inputs = await captureStageInputs(manifest, requests, weights);
  const deps = onnxDependencies(manifest);
  const cores = availableParallelism();
  const splits = o.splits ?? machineSplits(cores);
  const limits = o.limits ?? (o.quick ? LIMITS.quick : LIMITS.normal);

  const profiles: StageProfile[] = [];
  for (const stage of chosen) {
    log(`profiling ${stage.name} (${inputs.get(stage.name)!.length} sample items) at ${splits.map((s) => `${s.instances}x${s.threads}`).join(', ')}`);
    const r = await profileStage({ manifest, stage, weights, items: inputs.get(stage.name)!, splits, batchSizes: o.batchSizes ?? DEFAULT_BATCH_SIZES, limits, log });
    const p: StageProfile = {
      stage: stage.name, itemsPerRequest: inputs.get(stage.name)!.length / requests.length, dependsOn: deps.get(stage.name) ?? [], measurements: r.measurements, skipped: r.skipped,
      current: { instances: stage.scale.instances, threads: stage.scale.threads, maxSize: stage.batch.maxSize, maxDelayMs: stage.batch.maxDelayMs },
    };
    if (r.note) p.note = r.note;
    profiles.push(p);
  }
  const functionStages = manifest.stages.filter((s) => s.kind === 'function').map((s) => ({ stage: s.name, maxDelayMs: s.batch.maxDelayMs }));
  const proposal = propose({ budgetMs: o.budgetMs, stages: profiles, functionStages, cores });
  let written = false;
  if (o.write) {
    await writeProposal(manifest.file, [
      ...proposal.stages.filter((s) => Number.isFinite(s.itemsPerSec))
        .map((s) => ({ stage: s.stage, maxSize: s.maxSize, maxDelayMs: s.maxDelayMs, instances: s.instances, threads: s.threads })),
      ...proposal.functionStages.filter((f) => f.maxDelayMs !== f.currentMaxDelayMs).map((f) => ({ stage: f.stage, maxDelayMs: f.maxDelayMs })),
    ]);
    written = true;
  }
  return { manifest, profiles, proposal, written };
}
