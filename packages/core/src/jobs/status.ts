import type { JobCounts, JobRecord, JobState, JobStatus } from './types.js';

/** The state a caller sees: an active job is queued until its first item is taken up. */
export function jobState(job: JobRecord): JobState {
  if (job.state !== 'active') return job.state;
  return job.started > 0 ? 'running' : 'queued';
}

export function jobCounts(job: JobRecord): JobCounts {
  const done = job.succeeded + job.failed;
  // A redelivery overlapping a first try can count one take-up twice: never more started than inputs,
  // and a finished job has nothing running.
  const started = Math.min(job.total, job.started);
  const running = job.state === 'succeeded' || job.state === 'failed' ? 0 : Math.max(0, started - done);
  const notStarted = Math.max(0, job.total - Math.max(started, done));
  const cancelled = job.state === 'cancelled' ? notStarted : 0;
  return { total: job.total, queued: notStarted - cancelled, running, succeeded: job.succeeded, failed: job.failed, cancelled };
}

export function jobStatus(job: JobRecord, bucket: string, now = Date.now()): JobStatus {
  const counts = jobCounts(job);
  const status: JobStatus = {
    id: job.id, pipeline: job.pipeline, state: jobState(job), counts, createdAt: job.createdAt,
    output: { bucket, prefix: job.outputPrefix },
  };
  if (job.startedAt) status.startedAt = job.startedAt;
  if (job.finishedAt) status.finishedAt = job.finishedAt;
  if (job.resultsAt) status.output.manifest = manifestKey(job.outputPrefix);
  if (job.error) status.error = job.error;
  const done = counts.succeeded + counts.failed;
  if (job.startedAt && done > 0) {
    const end = job.finishedAt ? Date.parse(job.finishedAt) : now;
    const seconds = Math.max(0.001, (end - Date.parse(job.startedAt)) / 1000);
    const rate = done / seconds;
    status.throughputPerSecond = Math.round(rate * 100) / 100;
    if (job.state === 'active') status.etaSeconds = Math.round(((counts.queued + counts.running) / rate) * 10) / 10;
  }
  return status;
}

export function manifestKey(prefix: string): string { return `${prefix}manifest.json`; }
export function shardKey(prefix: string, n: number): string { return `${prefix}results-${String(n).padStart(5, '0')}.jsonl`; }
