import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { JobStore } from './store.js';
import { SHARD_LINES, type JobRecord, type ResultLine, type ResultsManifest } from './types.js';
import { jobCounts, jobState, manifestKey, shardKey } from './status.js';

/** Each item's one result line, in key order, from the jobs table (the record of truth). */
export async function* resultLines(store: JobStore, jobId: string): AsyncGenerator<ResultLine> {
  for await (const row of store.items(jobId)) if (row.line) yield row.line;
}

/**
 * Write the results under the job's output prefix: JSONL shards of
 * SHARD_LINES lines in key order, then manifest.json naming them. Written
 * from the table, so writing twice (a finisher that crashed half-way, then a
 * resume) writes the same objects.
 */
export async function writeResults(s3: S3Client, bucket: string, store: JobStore, job: JobRecord): Promise<ResultsManifest> {
  const shards: ResultsManifest['shards'] = [];
  let lines: string[] = [];
  const flush = async () => {
    if (!lines.length) return;
    const key = shardKey(job.outputPrefix, shards.length);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `${lines.join('\n')}\n`, ContentType: 'application/x-ndjson' }));
    shards.push({ key, lines: lines.length });
    lines = [];
  };
  for await (const line of resultLines(store, job.id)) {
    lines.push(JSON.stringify(line));
    if (lines.length >= SHARD_LINES) await flush();
  }
  await flush();
  const manifest: ResultsManifest = {
    jobId: job.id, pipeline: job.pipeline, state: jobState(job), counts: jobCounts(job), createdAt: job.createdAt, shards,
  };
  if (job.finishedAt) manifest.finishedAt = job.finishedAt;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(job.outputPrefix), Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
  await store.resultsWritten(job.id);
  return manifest;
}
