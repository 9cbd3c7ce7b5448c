import path from 'node:path';
import type { Manifest } from '../manifest/types.js';
import { findManifests, loadManifest } from '../manifest/load.js';
import { EnsembleError } from '../errors.js';

/**
 * Every `<modelsDir>/*\/pipeline.yaml`, loaded. Two folders declaring one
 * pipeline name are refused here, before anything is built or started: which
 * one a gateway would serve would depend on folder order.
 */
export async function loadPipelines(modelsDir: string): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const f of await findManifests(modelsDir)) manifests.push(await loadManifest(f));
  refuseDuplicateNames(manifests);
  return manifests;
}

export function refuseDuplicateNames(manifests: readonly Manifest[]): void {
  const seen = new Map<string, Manifest>();
  for (const m of manifests) {
    const first = seen.get(m.name);
    if (first) throw duplicatePipeline(first, m);
    seen.set(m.name, m);
  }
}

export function duplicatePipeline(first: Manifest, second: Manifest): EnsembleError {
  return new EnsembleError(`pipeline '${first.name}' is declared twice: ${shown(first.file)} and ${shown(second.file)}`);
}

/** Relative to the working folder when under it (`models/a/pipeline.yaml`), else absolute. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
