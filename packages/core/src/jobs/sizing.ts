import type { Manifest } from '../manifest/types.js';

/** Items a poller keeps in flight for a pipeline: two full batches of its first stage per instance. */
export function inFlightFor(m: Manifest): number {
  const first = firstStage(m);
  return Math.max(4, first.batch.maxSize * Math.max(1, first.scale.instances) * 2);
}

/** The stage that reads a pipeline input first (the one whose batch size a queue's batches are sized for). */
export function firstStage(m: Manifest): Manifest['stages'][number] {
  const inputs = new Set(m.inputs.map((i) => i.name));
  return m.stages.find((s) => Object.values(s.inputs).some((t) => inputs.has(t))) ?? m.stages[0];
}
