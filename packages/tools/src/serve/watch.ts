import { watch, type FSWatcher } from 'node:fs';
import type { ModelRepository } from '@ensemble/core/http/app.js';
import { pipelineIn } from './repository.js';

/** An editor saves a file in several writes (and a copy lands in chunks): one reload for the lot. */
export const WATCH_DEBOUNCE_MS = 300;

export interface WatchOptions {
  modelsDir: string;
  repository: ModelRepository;
  /** Whether this server serves the pipeline of that name (`--pipeline`). */
  chosen: (name: string) => boolean;
  log: (s: string) => void;
  debounceMs?: number;
}

/**
 * `ensemble serve --watch`: a change anywhere in a pipeline's folder (its
 * manifest, stage code, weights) reloads that pipeline once the writes have
 * settled; a new folder with a pipeline.yaml is loaded. A reload that fails
 * leaves the version serving as it was, and says why.
 */
export function watchPipelines({ modelsDir, repository, chosen, log, debounceMs = WATCH_DEBOUNCE_MS }: WatchOptions): { close(): void } {
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Map<string, Promise<void>>();
  let closed = false;

  const reload = async (folder: string) => {
    const name = await pipelineIn(modelsDir, folder);
    if (closed || !name || !chosen(name)) return;
    log(`${folder}: changed, reloading ${name}`);
    await repository.load(name).catch(() => undefined); // the repository has logged why
  };
  const changed = (file: string | null) => {
    if (closed || !file) return;
    const folder = file.split(/[\\/]/)[0];
    if (!folder || folder.startsWith('.') || file.split(/[\\/]/).includes('node_modules')) return;
    clearTimeout(timers.get(folder));
    timers.set(folder, setTimeout(() => {
      timers.delete(folder);
      // A change during a reload gets a reload of its own, after that one.
      const next = (running.get(folder) ?? Promise.resolve()).then(() => reload(folder));
      running.set(folder, next);
      void next.finally(() => { if (running.get(folder) === next) running.delete(folder); });
    }, debounceMs));
  };

  let watcher: FSWatcher;
  try {
    watcher = watch(modelsDir, { recursive: true }, (_event, file) => changed(file));
  } catch (e) {
    log(`--watch: cannot watch ${modelsDir}: ${e instanceof Error ? e.message : String(e)}`);
    return { close() {} };
  }
  watcher.on('error', (e) => log(`--watch: ${e.message}`));
  return {
    close() {
      closed = true;
      watcher.close();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
