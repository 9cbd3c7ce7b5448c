import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Manifest, OnnxStage } from '../manifest/types.js';

/**
 * A stage function's manifest, read ahead of time: `npm run package` writes
 * the pipeline's stages, as loadManifest made them, next to the manifest it
 * bundles, so the function's init reads JSON instead of parsing and checking
 * YAML (a YAML parser's first run costs a cold start tens of ms of CPU). The
 * file names the sha256 of the manifest text it was made from: a manifest
 * changed since (or a file from another build) is not trusted, the YAML is
 * read as before.
 */
export interface StagesFile {
  v: typeof STAGES_FILE_VERSION;
  /** Hex sha256 of the manifest's text when the file was written. */
  manifestSha256: string;
  pipeline: string;
  /** ONNX stages whole; other stages by name and kind only (a stage function serves ONNX stages alone). */
  stages: (OnnxStage | { name: string; kind: 'function' })[];
}

export const STAGES_FILE_VERSION = 1;

/** Where the stages file of `manifestFile` goes: beside it. */
export function stagesFilePath(manifestFile: string): string {
  return `${manifestFile}.stages.json`;
}

export function sha256Text(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The stages file for a loaded manifest whose text is `text`. */
export function stagesFile(manifest: Manifest, text: string): StagesFile {
  return {
    v: STAGES_FILE_VERSION,
    manifestSha256: sha256Text(text),
    pipeline: manifest.name,
    stages: manifest.stages.map((s) => (s.kind === 'onnx' ? s : { name: s.name, kind: 'function' as const })),
  };
}

/**
 * The pipeline name and stages of `manifestFile`: from its stages file when
 * that was made from this very text, else from the YAML.
 */
export async function readStages(manifestFile: string): Promise<{ pipeline: string; stages: StagesFile['stages']; from: 'stages-file' | 'manifest' }> {
  const [text, json] = await Promise.all([
    readFile(manifestFile, 'utf8'),
    readFile(stagesFilePath(manifestFile), 'utf8').catch(() => undefined),
  ]);
  if (json !== undefined) {
    try {
      const f = JSON.parse(json) as StagesFile;
      if (f.v === STAGES_FILE_VERSION && f.manifestSha256 === sha256Text(text) && Array.isArray(f.stages)) {
        return { pipeline: f.pipeline, stages: f.stages, from: 'stages-file' };
      }
    } catch { /* not JSON: read the manifest */ }
  }
  // Loaded only here: a packaged function whose stages file matches never evaluates the YAML parser and the schema.
  const { loadManifest } = await import('../manifest/load.js');
  const m = await loadManifest(manifestFile);
  return { pipeline: m.name, stages: m.stages, from: 'manifest' };
}
