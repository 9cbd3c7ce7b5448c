import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Manifest } from '@ensemble/core/manifest/types.js';
import type { ModelRepository } from '@ensemble/core/http/app.js';
import type { PipelineRegistry } from '@ensemble/core/pipelines/registry.js';
import { scanPipelines } from '@ensemble/core/pipelines/load-all.js';
import { NotFoundError } from '@ensemble/core/errors.js';

export interface RepositoryOptions {
  modelsDir: string;
  registry: PipelineRegistry;
  /** Build, push and verify a pipeline before it may serve. */
  prepare: (m: Manifest) => Promise<void>;
  /** Told of each version loaded here, as traffic moves to it. */
  loaded?: (m: Manifest) => void;
  log: (s: string) => void;
}

/**
 * Loading and unloading pipelines of a models folder while serving. A load
 * reads the folder again, so a changed manifest, stage module or weights file
 * is what the new version runs; it fails without touching the version serving.
 */
export function pipelineRepository({ modelsDir, registry, prepare, loaded, log }: RepositoryOptions): ModelRepository {
  return {
    async load(name) {
      const { manifests, broken } = await scanPipelines(modelsDir);
      const m = manifests.find((x) => x.name === name);
      if (!m) {
        const b = broken.find((x) => x.name === name);
        if (!b) throw new NotFoundError(`no pipeline '${name}' under ${modelsDir}`);
        registry.loadFailed(name, b.error);
        log(`${name}: not reloaded: ${message(b.error)}`);
        throw b.error;
      }
      try {
        await prepare(m);
        // Told as traffic moves, not once the old version's last requests are done: the new one's would be lost.
        await registry.reload(m, { serving: () => loaded?.(m) });
      } catch (e) {
        registry.loadFailed(name, e, m);
        log(`${name}: not reloaded: ${message(e)}`);
        throw e;
      }
      log(`loaded ${m.name} v${m.version} (${m.stages.length} stages)`);
    },
    async unload(name) {
      await registry.unload(name);
      log(`unloaded ${name}`);
    },
  };
}

/** The pipeline a folder of `modelsDir` holds now, by name (its folder's name when its manifest does not read). */
export async function pipelineIn(modelsDir: string, folder: string): Promise<string | undefined> {
  const info = await stat(join(modelsDir, folder, 'pipeline.yaml')).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  const { manifests, broken } = await scanPipelines(modelsDir).catch(() => ({ manifests: [], broken: [] }));
  const dir = join(modelsDir, folder);
  return manifests.find((m) => m.dir === dir)?.name ?? broken.find((b) => b.file === join(dir, 'pipeline.yaml'))?.name;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
