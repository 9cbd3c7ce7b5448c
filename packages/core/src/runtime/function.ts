import { pathToFileURL } from 'node:url';
import type { FunctionStage } from '../manifest/types.js';
import type { Item } from '../tensor/types.js';
import type { BatchResult, FunctionStageContext, FunctionStageModule, ItemOutcome, StageRuntime } from './types.js';
import { EnsembleError, StageError } from '../errors.js';
import { untilAborted } from '../deadline.js';
import { threadCpuMicros, usageSince } from './process-usage.js';

/** Imports a function stage's module, given its absolute path. */
export type StageModuleLoader = (file: string) => Promise<unknown>;

const importFile: StageModuleLoader = (file) => import(pathToFileURL(file).href);
let loadStageModule: StageModuleLoader = importFile;

/**
 * Replace how stage modules are imported. A bundled Lambda gateway cannot
 * import `stages/*.ts` at run time, so its bundle registers a loader backed
 * by statically bundled modules (see packages/tools/src/package/). Without an
 * argument, back to importing the file.
 */
export function setStageModuleLoader(loader?: StageModuleLoader): void {
  loadStageModule = loader ?? importFile;
}

/** Import a module a manifest names (a stage, an observer) the way function stages are: from the bundle when registered. */
export function importManifestModule(file: string): Promise<unknown> {
  return loadStageModule(file);
}

/**
 * Batches of one function stage in flight at once, at least. Function stages
 * are async JS in the gateway's own process, not instances to share: many
 * batches may overlap (a stage awaiting I/O holds nothing), and the bound
 * only keeps a flood of hung calls from piling up without limit — each
 * still ends at its deadline and frees its slot. A stage's
 * `scale.instances` raises it.
 */
export const FUNCTION_STAGE_CONCURRENCY = 64;

/** The batcher's in-flight bound for a function stage. */
export function functionStageConcurrency(stage: Pick<FunctionStage, 'scale'>): number {
  return Math.max(stage.scale.instances, FUNCTION_STAGE_CONCURRENCY);
}

/** Load a function stage's module and wrap it as a StageRuntime. */
export async function createFunctionRuntime(stage: FunctionStage, pipeline: string, dir: string): Promise<StageRuntime> {
  const t0 = performance.now();
  const mod = (await loadStageModule(stage.module)) as { default?: FunctionStageModule; stage?: FunctionStageModule };
  const impl = mod.default ?? mod.stage;
  if (!impl || typeof impl.process !== 'function') {
    throw new StageError(stage.name, `${stage.module} does not export a stage (default export with process())`);
  }
  const ctx: FunctionStageContext = { stage: stage.name, pipeline, options: stage.options, dir };
  await impl.init?.(ctx);
  const initMs = performance.now() - t0;
  let cold = true;

  return {
    async run(items: Item[], signal?: AbortSignal): Promise<BatchResult> {
      const start = performance.now();
      const callCtx: FunctionStageContext = signal ? { ...ctx, signal } : ctx;
      // The CPU the module's own code takes on this thread: each item's process() runs synchronously up to its
      // first await, all of them inside this map, so two reads bound that work and nothing of another batch's.
      const cpuMark = threadCpuMicros();
      // The batch ends at its deadline whether or not the module listens to the signal: a call
      // that never settles must not hold its batcher slot forever.
      const settled = Promise.all(items.map(async (item): Promise<ItemOutcome> => {
        try {
          const out = await impl.process(item, callCtx);
          if (Array.isArray(out) !== stage.fanout) {
            return { ok: false, error: stage.fanout ? 'a fanout stage must return an array of items' : 'returned an array but the stage is not fanout: true' };
          }
          return { ok: true, items: Array.isArray(out) ? out : [out] };
        } catch (e) {
          return { ok: false, error: e instanceof Error ? e.message : String(e), code: e instanceof EnsembleError ? e.code : 'stage_failed' };
        }
      }));
      const cpuNow = cpuMark === undefined ? undefined : threadCpuMicros();
      const outcomes = await untilAborted(settled, signal);
      const coldStart = cold;
      cold = false;
      const result: BatchResult = { outcomes, computeMs: performance.now() - start, coldStart, initMs: coldStart ? initMs : undefined };
      if (cpuNow !== undefined) result.cpuMs = (cpuNow - cpuMark!) / 1000;
      // This process's peak RSS (the gateway's, or the worker's it runs in), read at most once a second.
      result.peakRssBytes = usageSince(undefined, { peakRssWithinMs: 1_000 }).peakRssBytes;
      return result;
    },
    async close() { /* nothing held */ },
  };
}
