import path from 'node:path';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { DeploymentPlan, PlanOptions } from './types.js';
import { findManifests, loadManifest } from '@ensemble/core/manifest/load.js';
import { EnsembleError } from '@ensemble/core/errors.js';
import { planDeployment } from './plan.js';

export interface SelectOptions extends PlanOptions {
  /** Deploy only these pipelines (ENSEMBLE_PIPELINES); default every `<root>/models/<name>/pipeline.yaml`. */
  pipelines?: string[];
}

/**
 * The manifests a deploy takes and their plan, for sst.config.ts and
 * `npm run package` alike (so both see the same functions). A manifest that
 * does not load only blocks a deploy of everything; a named subset goes
 * ahead without it.
 */
export async function selectDeployment(opts: SelectOptions = {}): Promise<{ plan: DeploymentPlan; manifests: Manifest[] }> {
  const root = path.resolve(opts.root ?? process.cwd());
  const only = (opts.pipelines ?? []).map((s) => s.trim()).filter(Boolean);
  const loaded = await Promise.allSettled((await findManifests(path.join(root, 'models'))).map((file) => loadManifest(file)));
  const manifests = loaded.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const broken = loaded.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (broken.length && !only.length) throw broken[0];
  const missing = only.filter((n) => !manifests.some((m) => m.name === n));
  if (missing.length) {
    throw new EnsembleError(`these pipelines are not there or do not load: ${missing.join(', ')}${broken.length ? `\n${broken.map((e) => e.message).join('\n')}` : ''}`);
  }
  const selected = only.length ? manifests.filter((m) => only.includes(m.name)) : manifests;
  return { plan: planDeployment(selected, { ...opts, root }), manifests: selected };
}

/** ENSEMBLE_STAGE_GLIBC_TUNABLES, which replaces the stage functions' malloc settings ('' for none); unset: the default. */
export function stageGlibcTunablesFromEnv(env: Record<string, string | undefined> = process.env): string | undefined {
  return env.ENSEMBLE_STAGE_GLIBC_TUNABLES?.trim();
}

/**
 * The OpenTelemetry export settings of this environment that every function should get: the OTLP
 * endpoints, headers and timeouts, the batch processor's, the resource attributes and the SDK's switches.
 * OTEL_SERVICE_NAME is left out: each function names itself (ensemble, ensemble-<stage>).
 */
export function telemetryFromEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v.trim() === '' || !/^OTEL_/.test(k) || k === 'OTEL_SERVICE_NAME') continue;
    out[k] = v;
  }
  return out;
}

/** ENSEMBLE_PIPELINES=demo,ocr as a list. */
export function pipelinesFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  return (env.ENSEMBLE_PIPELINES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}
