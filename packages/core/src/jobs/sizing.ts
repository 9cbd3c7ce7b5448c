import type { Manifest } from '../manifest/types.js';

/**
 * Items a poller keeps in flight for a pipeline: enough for every stage to
 * have a full batch running on each instance and the next one waiting, with
 * the items spread over the whole pipeline, not only its first stage (a page
 * in recognition leaves detection free for the next). Each model stage
 * counts its instances' batches; the function stages count as one, as they
 * share the gateway's event loop. A fan-out stage's items are parts of an
 * input (an image's lines), so this errs on the side of more inputs in
 * flight, which costs memory but not refusals: job items run at a lower
 * priority and leave every stage queue after synchronous ones. Never less
 * than two batches of the first stage per instance, nor than 4.
 */
export function inFlightFor(m: Manifest): number {
  const first = firstStage(m);
  const firstBatches = first.batch.maxSize * Math.max(1, first.scale.instances) * 2;
  const models = m.stages.filter((s) => s.kind !== 'function');
  const slots = models.reduce((n, s) => n + s.batch.maxSize * Math.max(1, s.scale.instances), 0) + (models.length < m.stages.length ? 1 : 0);
  return Math.max(4, firstBatches, slots * 2);
}

/**
 * Items a poller keeps in flight while the server answers synchronous
 * requests: a sixth of inFlightFor, at least one (OCR 2 of 12). Enough that
 * the job still moves, few enough that a request does not queue behind a
 * stage full of job items, or share the CPU with many of them.
 */
export function quietInFlightFor(m: Manifest): number {
  return Math.max(1, Math.ceil(inFlightFor(m) / 6));
}

/** The stage that reads a pipeline input first (the one whose batch size a queue's batches are sized for). */
export function firstStage(m: Manifest): Manifest['stages'][number] {
  const inputs = new Set(m.inputs.map((i) => i.name));
  return m.stages.find((s) => Object.values(s.inputs).some((t) => inputs.has(t))) ?? m.stages[0];
}
