/**
 * Batch jobs: many inputs in, one outcome per input out, run through the
 * same pipelines and executor as synchronous requests, fed from an SQS queue
 * per pipeline. See docs/jobs.md.
 */

/** What a caller sees. `queued` and `running` are derived from the counters of an active job. */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** What the jobs table stores: `active` until every item has an outcome, or the job is cancelled. */
export type StoredJobState = 'active' | 'succeeded' | 'failed' | 'cancelled';

/** How an item's object is read: raw bytes of the pipeline's one BYTES input, or one Open Inference Protocol request (JSON). */
export type ItemFormat = 'raw' | 'request';

/** One input of a job. */
export interface JobItem {
  /** The name results are reported under: the object key, or `<jsonl key>#<line>` (1-based). */
  key: string;
  /** The object holding the input (for an inline request, the JSONL object it came from). */
  object: string;
  format: ItemFormat;
  /** A small request carried in the message itself (a JSONL line up to INLINE_REQUEST_BYTES), read instead of `object`. */
  inline?: string;
}

/** The SQS message body for one item. */
export interface ItemMessage extends JobItem {
  jobId: string;
  pipeline: string;
}

/** The body of `POST /v2/models/{m}/jobs`. */
export interface SubmitJobRequest {
  inputs: { keys: string[] } | { prefix: string } | { jsonl: string };
  /** Results go under `<prefix>` (shards and a manifest). */
  output: { prefix: string };
}

export interface JobRecord {
  id: string;
  pipeline: string;
  state: StoredJobState;
  total: number;
  /** Items that a consumer took up at least once. */
  started: number;
  succeeded: number;
  failed: number;
  /** ISO-8601 times. */
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The last counter change. */
  updatedAt?: string;
  /** When the result shards and manifest were written. */
  resultsAt?: string;
  outputPrefix: string;
  /** The object listing every item (one JobItem per line). */
  itemsObject: string;
  error?: string;
}

export interface JobCounts {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
  /** Items a cancel dropped before they started. */
  cancelled: number;
}

/** `GET /v2/jobs/{id}`. */
export interface JobStatus {
  id: string;
  pipeline: string;
  state: JobState;
  counts: JobCounts;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Items with an outcome per second since the first item started. */
  throughputPerSecond?: number;
  /** Seconds until the rest have their outcome at that rate (active jobs only). */
  etaSeconds?: number;
  output: { bucket: string; prefix: string; manifest?: string };
  error?: string;
}

/** One line of the results: the item's outputs and run id, or its error. */
export type ResultLine =
  | { key: string; runId: string; outputs: unknown[] }
  | { key: string; runId?: string; error: string; code?: string };

/** `<output prefix>manifest.json`. */
export interface ResultsManifest {
  jobId: string;
  pipeline: string;
  state: JobState;
  counts: JobCounts;
  createdAt: string;
  finishedAt?: string;
  /** JSONL shards, each with its line count, in key order. */
  shards: { key: string; lines: number }[];
}

/** Items run at this priority (Triton's schedule policy: above 0 yields to synchronous requests). */
export const JOB_PRIORITY = 1;
/** Lines per result shard. */
export const SHARD_LINES = 1_000;
/**
 * JSONL lines up to this size travel in their queue message (SQS takes 256 KiB
 * per message and per SendMessageBatch): no object is written at submit or
 * read per item. Longer lines get an object of their own.
 */
export const INLINE_REQUEST_BYTES = 16 * 1024;
/** Items one job may have. */
export const MAX_JOB_ITEMS = 100_000;
