import { randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BadRequestError, EnsembleError, NotFoundError, clip } from '../errors.js';
import type { JobQueues } from './queue.js';
import type { JobStore } from './store.js';
import { INLINE_REQUEST_BYTES, MAX_JOB_ITEMS, type ItemMessage, type JobItem, type JobRecord, type SubmitJobRequest } from './types.js';

export interface SubmitDeps {
  s3: S3Client;
  bucket: string;
  store: JobStore;
  queues: JobQueues;
}

/** Where a job keeps what it made of its inputs (the item list, a JSONL file's requests one per object). */
export function jobDataPrefix(id: string): string { return `jobs/${id}/`; }

const MAX_KEY = 1_000;

/** Read and check the body of `POST /v2/models/{m}/jobs`. */
export function parseSubmit(body: unknown): SubmitJobRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('a job request is a JSON object: {"inputs": {...}, "output": {"prefix": "..."}}');
  const { inputs, output } = body as Record<string, unknown>;
  if (typeof inputs !== 'object' || inputs === null) throw new BadRequestError('a job needs "inputs": {"keys": [...]}, {"prefix": "..."} or {"jsonl": "..."}');
  const given = (['keys', 'prefix', 'jsonl'] as const).filter((k) => (inputs as Record<string, unknown>)[k] !== undefined);
  if (given.length !== 1) throw new BadRequestError(`"inputs" takes exactly one of "keys", "prefix" or "jsonl"${given.length ? `, got ${given.join(' and ')}` : ''}`);
  const prefix = (output as { prefix?: unknown } | undefined)?.prefix;
  if (typeof prefix !== 'string' || !prefix.trim()) throw new BadRequestError('a job needs "output": {"prefix": "..."}, where its results go in the bucket');
  if (prefix.length > 512) throw new BadRequestError(`"output.prefix" is over 512 characters: '${clip(prefix, 64)}'`);
  const outputPrefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const value = (inputs as Record<string, unknown>)[given[0]];
  if (given[0] === 'keys') {
    if (!Array.isArray(value) || value.length === 0) throw new BadRequestError('"inputs.keys" must be a non-empty list of object keys');
    if (value.length > MAX_JOB_ITEMS) throw new BadRequestError(`a job takes at most ${MAX_JOB_ITEMS} inputs, got ${value.length}`);
    const seen = new Set<string>();
    for (const k of value) {
      if (typeof k !== 'string' || !k || k.length > MAX_KEY) throw new BadRequestError(`"inputs.keys" holds ${clip(JSON.stringify(k), 64)}: every key must be a string of 1 to ${MAX_KEY} characters`);
      if (seen.has(k)) throw new BadRequestError(`"inputs.keys" lists '${clip(k, 64)}' twice: each input gets exactly one result`);
      seen.add(k);
    }
    return { inputs: { keys: value as string[] }, output: { prefix: outputPrefix } };
  }
  if (typeof value !== 'string' || !value) throw new BadRequestError(`"inputs.${given[0]}" must be a non-empty string`);
  return { inputs: given[0] === 'prefix' ? { prefix: value } : { jsonl: value }, output: { prefix: outputPrefix } };
}

/** Create the job, list its items, and queue one message per item; resolves with the job once every message is queued. */
export async function submitJob(deps: SubmitDeps, pipeline: string, req: SubmitJobRequest): Promise<JobRecord> {
  const id = randomUUID();
  const items = await listItems(deps, id, req);
  const itemsObject = `${jobDataPrefix(id)}items.jsonl`;
  await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: itemsObject, Body: items.map((i) => JSON.stringify(i)).join('\n'), ContentType: 'application/x-ndjson' }));
  const job: JobRecord = {
    id, pipeline, state: 'active', total: items.length, started: 0, succeeded: 0, failed: 0,
    createdAt: new Date().toISOString(), outputPrefix: req.output.prefix, itemsObject,
  };
  await deps.store.create(job);
  try {
    await deps.queues.send(pipeline, items.map((i): ItemMessage => ({ ...i, jobId: id, pipeline })));
  } catch (e) {
    // Messages already queued find the job failed and are dropped.
    await deps.store.transition(id, 'failed', { error: `queueing the items failed: ${(e as Error).message}` });
    throw e;
  }
  return job;
}

async function listItems(deps: SubmitDeps, id: string, req: SubmitJobRequest): Promise<JobItem[]> {
  const inputs = req.inputs;
  if ('keys' in inputs) return inputs.keys.map((k) => ({ key: k, object: k, format: 'raw' }));
  if ('prefix' in inputs) {
    const items: JobItem[] = [];
    let skipped = 0;
    let token: string | undefined;
    do {
      const out = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: inputs.prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) {
        // The results of an earlier job written under the same prefix are not inputs.
        if (o.Key?.startsWith(req.output.prefix)) skipped++;
        if (!o.Key || o.Key.endsWith('/') || o.Key.startsWith(req.output.prefix)) continue;
        items.push({ key: o.Key, object: o.Key, format: 'raw' });
      }
      if (items.length > MAX_JOB_ITEMS) throw new BadRequestError(`a job takes at most ${MAX_JOB_ITEMS} inputs; '${clip(inputs.prefix, 64)}' holds more`);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    if (!items.length) {
      throw new BadRequestError(skipped
        ? `no inputs under '${clip(inputs.prefix, 200)}': its ${skipped} objects are under the output prefix '${clip(req.output.prefix, 200)}', whose objects are results, not inputs; write the results elsewhere`
        : `no objects under '${clip(inputs.prefix, 200)}' in bucket '${deps.bucket}'`);
    }
    return items;
  }
  const text = await readText(deps, inputs.jsonl);
  const items: JobItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let parsed: unknown;
    try { parsed = JSON.parse(line); } catch { throw new BadRequestError(`${inputs.jsonl} line ${i + 1} is not JSON`); }
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { inputs?: unknown }).inputs)) {
      throw new BadRequestError(`${inputs.jsonl} line ${i + 1} is not an Open Inference Protocol request (no "inputs" list)`);
    }
    if (items.length >= MAX_JOB_ITEMS) throw new BadRequestError(`a job takes at most ${MAX_JOB_ITEMS} inputs; ${inputs.jsonl} has more lines`);
    const key = `${inputs.jsonl}#${i + 1}`;
    if (Buffer.byteLength(line) <= INLINE_REQUEST_BYTES) { items.push({ key, object: inputs.jsonl, format: 'request', inline: line }); continue; }
    const object = `${jobDataPrefix(id)}requests/${String(i + 1).padStart(6, '0')}.json`;
    await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: object, Body: line, ContentType: 'application/json' }));
    items.push({ key, object, format: 'request' });
  }
  if (!items.length) throw new BadRequestError(`${inputs.jsonl} holds no requests`);
  return items;
}

async function readText(deps: SubmitDeps, key: string): Promise<string> {
  try {
    const out = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
    return await out.Body!.transformToString();
  } catch (e) {
    if ((e as { name?: string }).name === 'NoSuchKey') throw new NotFoundError(`no object '${clip(key, 200)}' in bucket '${deps.bucket}'`);
    throw new EnsembleError(`reading ${key}: ${(e as Error).message}`, 'bad_gateway', { cause: e });
  }
}
