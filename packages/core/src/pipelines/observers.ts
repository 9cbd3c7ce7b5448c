import type { ObserverSpec } from '../manifest/types.js';
import type { LoadedObserver, ObserverContext, ObserverModule } from '../observability/events.js';
import { importManifestModule } from '../runtime/function.js';
import { EnsembleError } from '../errors.js';

/**
 * Observer modules, loaded as function stages are (a bundled gateway
 * resolves them from its bundle). A module's default export (or its
 * `observer` export) has `create(ctx)`, which returns the observer.
 */
export async function loadObservers(specs: readonly ObserverSpec[], ctx: Omit<ObserverContext, 'options'>): Promise<LoadedObserver[]> {
  const out: LoadedObserver[] = [];
  try {
    for (const spec of specs) out.push(await loadObserver(spec, ctx));
  } catch (e) {
    await closeObservers(out);
    throw e;
  }
  return out;
}

async function loadObserver(spec: ObserverSpec, ctx: Omit<ObserverContext, 'options'>): Promise<LoadedObserver> {
  const mod = (await importManifestModule(spec.module)) as { default?: ObserverModule; observer?: ObserverModule };
  const impl = mod.default ?? mod.observer;
  if (!impl || typeof impl.create !== 'function') {
    throw new EnsembleError(`${spec.module} does not export an observer (a default export with create(ctx) returning { requestEnded, finding, batch, ... })`, 'invalid_manifest');
  }
  try {
    return await impl.create({ ...ctx, options: spec.options });
  } catch (e) {
    throw new EnsembleError(`observer ${spec.module} failed to start: ${e instanceof Error ? e.message : String(e)}`, 'invalid_manifest', { cause: e });
  }
}

/** Close observers, reporting (not throwing) a close that fails: an exporter's flush must not keep a version from unloading. */
export async function closeObservers(list: readonly LoadedObserver[]): Promise<void> {
  for (const o of list) {
    try { await o.close?.(); } catch (e) { console.error('[ensemble] an observer failed to close:', e); }
  }
}
