import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Manifest } from '../manifest/types.js';

/**
 * A stage function's manifest, read ahead of time: `npm run package` writes
 * the pipeline's stages, as loadManifest made them, next to the manifest it
 * bundles, so the function's init reads JSON instead of parsing and checking
 * YAML (a YAML parser's first run costs a cold start tens of ms of CPU). The
 * file names the sha256 of the manifest text it was made from: a manifest
 * changed since (or a file from another build) is not trusted, the YAML is
 * read as before. The whole loaded manifest is kept, because a stage
 * function may also run the function stages placed with its ONNX stage
 * (placement/placement.ts); paths inside the manifest's folder (the file, its
 * stage modules) are written relative to it and made absolute again where
 * the file is read, so the bundle may live anywhere.
 */
export interface StagesFile {
  v: typeof STAGES_FILE_VERSION;
  /** Hex sha256 of the manifest's text when the file was written. */
  manifestSha256: string;
  /** The manifest as loadManifest made it, its folder's paths as `${MANIFEST_DIR}/...`. */
  manifest: Manifest;
}

export const STAGES_FILE_VERSION = 2;
/** Stands for the manifest's folder in the paths a stages file holds. */
export const MANIFEST_DIR = '$MANIFEST_DIR';

/** Where the stages file of `manifestFile` goes: beside it. */
export function stagesFilePath(manifestFile: string): string {
  return `${manifestFile}.stages.json`;
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The stages file for a loaded manifest whose text is `text`. */
export function stagesFile(manifest: Manifest, text: string): StagesFile {
  const dir = manifest.dir;
  const relative = (v: unknown): unknown => {
    if (typeof v !== 'string') return v;
    if (v === dir) return MANIFEST_DIR;
    return v.startsWith(dir + path.sep) ? `${MANIFEST_DIR}/${path.relative(dir, v).split(path.sep).join('/')}` : v;
  };
  const copy = JSON.parse(JSON.stringify(manifest, (_k, v: unknown) => relative(v))) as Manifest;
  return { v: STAGES_FILE_VERSION, manifestSha256: sha256Text(text), manifest: copy };
}

/** `m` with its folder's paths pointing into `dir`. */
function located(m: Manifest, dir: string): Manifest {
  return JSON.parse(JSON.stringify(m), (_k, v: unknown) => {
    if (typeof v !== 'string' || !v.startsWith(MANIFEST_DIR)) return v;
    return v === MANIFEST_DIR ? dir : path.join(dir, ...v.slice(MANIFEST_DIR.length + 1).split('/'));
  }) as Manifest;
}

/**
 * The loaded manifest of `manifestFile`: from its stages file when that was
 * made from this very text, else from the YAML.
 */
export async function readStages(manifestFile: string): Promise<{ manifest: Manifest; from: 'stages-file' | 'manifest' }> {
  const [text, json] = await Promise.all([
    readFile(manifestFile, 'utf8'),
    readFile(stagesFilePath(manifestFile), 'utf8').catch(() => undefined),
  ]);
  if (json !== undefined) {
    try {
      const f = JSON.parse(json) as StagesFile;
      if (f.v === STAGES_FILE_VERSION && f.manifestSha256 === sha256Text(text) && Array.isArray(f.manifest?.stages)) {
        return { manifest: located(f.manifest, path.dirname(path.resolve(manifestFile))), from: 'stages-file' };
      }
    } catch { /* not JSON: read the manifest */ }
  }
  // Loaded only here: a packaged function whose stages file matches never evaluates the YAML parser and the schema.
  const { loadManifest } = await import('../manifest/load.js');
  return { manifest: await loadManifest(manifestFile), from: 'manifest' };
}
