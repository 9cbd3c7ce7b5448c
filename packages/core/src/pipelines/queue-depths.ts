import type { StageDepth } from '../observability/endpoint.js';
import type { PipelineRegistry } from './registry.js';

/** Every serving pipeline's stage queues now, for a scrape; a pipeline not serving has none. */
export function queueDepths(registry: PipelineRegistry): StageDepth[] {
  const out: StageDepth[] = [];
  for (const name of registry.names()) {
    let p;
    try { p = registry.get(name); } catch { continue; }
    for (const [stage, depth] of Object.entries(p.executor.queueDepths())) {
      out.push({ pipeline: name, version: p.manifest.version, stage, depth });
    }
  }
  return out;
}
