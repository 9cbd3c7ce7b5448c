import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { SubmitDeps } from './submit.js';
import { finalizeIfDone } from './consumer.js';
import type { ItemMessage, JobItem } from './types.js';

/** Re-queue the items without an outcome of every unfinished job; returns how many were queued. */
export async function resumeJobs(deps: SubmitDeps): Promise<number> {
  let queued = 0;
  for (const stale of await deps.store.unfinished()) {
    // Nothing consumes yet: the counters can be set from the item rows safely.
    const job = (await deps.store.recount(stale.id)) ?? stale;
    const done = new Set<string>();
    for await (const row of deps.store.items(job.id)) if (row.state !== 'running') done.add(row.key);
    if (job.state === 'active') {
      const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: job.itemsObject }));
      const items = (await out.Body!.transformToString()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as JobItem);
      const missing = items.filter((i) => !done.has(i.key)).map((i): ItemMessage => ({ ...i, jobId: job.id, pipeline: job.pipeline }));
      await deps.queues.send(job.pipeline, missing);
      queued += missing.length;
    }
    await finalizeIfDone(deps, job);
  }
  return queued;
}
