import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { buildDag } from './dag.js';
import { attachLocator, Locator, PIPELINE } from './locator.js';
import { parseYaml } from './parse.js';
import { readManifest, type ManifestReadOptions } from './schema.js';
import type { Manifest } from './types.js';

export const MANIFEST_FILE = 'pipeline.yaml';

/**
 * Reads and checks a pipeline manifest: everything that can be checked
 * without the weights (schema, defaults, DAG). `verifyManifest` does the rest.
 */
export async function loadManifest(file: string, opts: ManifestReadOptions = {}): Promise<Manifest> {
  const abs = path.resolve(file);
  const loc = new Locator(abs);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw loc.error(PIPELINE, '', `cannot read the manifest: ${(err as Error).message}`);
  }
  const { manifest, typedOutputs } = readManifest(parseYaml(text, loc), abs, loc, opts);
  const m: Manifest = { ...manifest, ...buildDag(manifest, typedOutputs, loc) };
  attachLocator(m, loc);
  return m;
}

/** Absolute paths of every `<modelsDir>/*\/pipeline.yaml`, sorted; none if the folder is missing. */
export async function findManifests(modelsDir: string): Promise<string[]> {
  const root = path.resolve(modelsDir);
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() && !entry.isSymbolicLink()) continue;
    const candidate = path.join(root, entry.name, MANIFEST_FILE);
    const info = await stat(candidate).catch(() => undefined);
    if (info?.isFile()) found.push(candidate);
  }
  return found.sort();
}
