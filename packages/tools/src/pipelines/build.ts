import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import { EnsembleError } from '@ensemble/core/errors.js';

/** A pipeline folder's `build.ts` exports this to (re)generate its derived weights. */
export type BuildFn = (pipelineDir: string) => Promise<unknown>;

/** ONNX stages whose local weights file is not there yet. */
export async function missingSources(m: Manifest): Promise<string[]> {
  const missing: string[] = [];
  for (const s of m.stages) {
    if (s.kind !== 'onnx' || !s.weights.source) continue;
    try { await access(s.weights.source); } catch { missing.push(s.weights.source); }
  }
  return missing;
}

/**
 * Generated and derived weights (the demo's models, cut stage models) are not
 * committed; the pipeline's `build.ts` makes them. Runs it only when a source
 * file is missing, so a second start costs nothing.
 */
export async function buildIfNeeded(m: Manifest, log: (s: string) => void = () => undefined, force = false): Promise<boolean> {
  const missing = await missingSources(m);
  if (!force && missing.length === 0) return false;
  const script = join(m.dir, 'build.ts');
  try { await access(script); } catch {
    throw new EnsembleError(`${m.file}: weights source ${missing.join(', ')} is missing and the pipeline has no build.ts to make it`);
  }
  log(`building ${m.name} models (${script})`);
  const mod = (await import(pathToFileURL(script).href)) as { build?: BuildFn };
  if (typeof mod.build !== 'function') throw new EnsembleError(`${script} does not export build(pipelineDir)`);
  await mod.build(m.dir);
  const still = await missingSources(m);
  if (still.length) throw new EnsembleError(`${script} ran but did not produce ${still.join(', ')}`);
  return true;
}
