import path from 'node:path';
import { stat } from 'node:fs/promises';
import type { Manifest } from '../manifest/types.js';
import { findManifests, loadManifest } from '../manifest/load.js';
import { EnsembleError } from '../errors.js';

/** A pipeline folder whose manifest could not be read: served as not ready, under its folder's name. */
export interface BrokenPipeline {
  name: string;
  file: string;
  error: unknown;
}

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

/**
 * Like `loadPipelines`, but a manifest that does not load is returned as
 * broken instead of stopping the others. A folder that is missing or holds no
 * pipeline is an error naming it: a mistyped `--models` would otherwise serve
 * nothing without a word.
 */
export async function scanPipelines(modelsDir: string): Promise<{ manifests: Manifest[]; broken: BrokenPipeline[] }> {
  const root = path.resolve(modelsDir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new EnsembleError(`models folder ${shown(root)} does not exist`, 'usage');
  const files = await findManifests(root);
  if (!files.length) throw new EnsembleError(`models folder ${shown(root)} holds no pipeline (no */pipeline.yaml)`, 'usage');
  const manifests: Manifest[] = [];
  const broken: BrokenPipeline[] = [];
  for (const file of files) {
    try {
      manifests.push(await loadManifest(file));
    } catch (error) {
      broken.push({ name: path.basename(path.dirname(file)), file, error });
    }
  }
  refuseDuplicateNames(manifests);
  return { manifests, broken: broken.filter((b) => !manifests.some((m) => m.name === b.name)) };
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
