/**
 * Batch jobs through the real gateway, the real SQS client against the fauxqs
 * emulator, dynalite and s3rver: the demo pipeline for the mechanics (JSONL
 * input, retries to the dead-letter queue, cancel, duplicates).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import type { ResultsManifest } from '../packages/core/src/jobs/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { inFlightFor, quietInFlightFor } from '../packages/core/src/jobs/sizing.js';
import { SYNC_HOLD_MS } from '../packages/core/src/executor/activity.js';
import { addDemo, writeOverlapPipeline } from './helpers/pipelines.js';
import { jobResults, jobStatus, submitJob, waitForJob } from './helpers/jobs.js';

let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-jobs-'));
  await addDemo(join(dir, 'models'));
  await writeOverlapPipeline(join(dir, 'models'));
  server = await startServer({
    port: 0, dataDir: join(dir, 'data'), modelsDir: join(dir, 'models'), env: {}, log: () => undefined,
    // Retries a second apart and the dead-letter queue after two receives, so a failing item ends quickly.
    jobQueuePolicy: { maxReceives: 2, backoffSeconds: 1, maxBackoffSeconds: 1 },
  });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const put = (key: string, body: string | Uint8Array) => server.env.s3.send(new PutObjectCommand({ Bucket: server.env.settings.bucket, Key: key, Body: body }));
const getText = async (key: string) => (await server.env.s3.send(new GetObjectCommand({ Bucket: server.env.settings.bucket, Key: key }))).Body!.transformToString();
const request = (i: number) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [i, i + 1, -i, 0.5] }] });

describe('batch jobs', () => {
  it('runs a JSONL job: one result line per request with the synchronous answer and its run id, shards and a manifest in S3', async () => {
    const n = 60;
    await put('in/requests.jsonl', Array.from({ length: n }, (_, i) => JSON.stringify(request(i))).join('\n'));
    const sub = await submitJob(server.url, 'demo', { inputs: { jsonl: 'in/requests.jsonl' }, output: { prefix: 'out/first' } });
    expect(sub.status, JSON.stringify(sub.json)).toBe(202);
    expect(sub.json).toMatchObject({ pipeline: 'demo', state: 'queued', counts: { total: n, queued: n, succeeded: 0 } });
    const done = await waitForJob(server.url, sub.json.id);
    expect(done).toMatchObject({ state: 'succeeded', counts: { total: n, queued: 0, running: 0, succeeded: n, failed: 0 } });
    expect(done.throughputPerSecond).toBeGreaterThan(0);

    const lines = await jobResults(server.url, sub.json.id);
    expect(lines.map((l) => l.key).sort()).toEqual(Array.from({ length: n }, (_, i) => `in/requests.jsonl#${i + 1}`).sort());
    // Each line holds what the synchronous endpoint answers for the same request.
    for (const i of [0, 17, n - 1]) {
      const line = lines.find((l) => l.key === `in/requests.jsonl#${i + 1}`)!;
      const sync = (await (await fetch(`${server.url}/v2/models/demo/infer`, { method: 'POST', body: JSON.stringify(request(i)) })).json()) as { outputs: { data: number[] }[] };
      expect('outputs' in line && (line.outputs[0] as { data: number[] }).data).toEqual(sync.outputs[0].data);
    }
    // Each item left a run record tagged with the job.
    const first = lines[0] as { runId: string };
    await server.env.runs.flush();
    const rec = (await (await fetch(`${server.url}/v2/runs/${first.runId}`)).json()) as RunRecord;
    expect(rec).toMatchObject({ pipeline: 'demo', status: 'succeeded', jobId: sub.json.id, jobItem: lines[0].key });

    const manifest = JSON.parse(await getText('out/first/manifest.json')) as ResultsManifest;
    expect(manifest).toMatchObject({ jobId: sub.json.id, state: 'succeeded', counts: { succeeded: n } });
    const shardLines = (await Promise.all(manifest.shards.map((s) => getText(s.key)))).join('').split('\n').filter(Boolean);
    expect(shardLines.map((l) => JSON.parse(l) as { key: string }).map((l) => l.key)).toEqual(lines.map((l) => l.key));
  });

  it('fails a bad input at once, retries a missing one with backoff into the dead-letter queue, and still finishes the job', async () => {
    await put('bad/a.bin', 'not a request');
    const sub = await submitJob(server.url, 'demo', { inputs: { keys: ['bad/a.bin', 'bad/missing.bin'] }, output: { prefix: 'out/poison/' } });
    expect(sub.status).toBe(202);
    const done = await waitForJob(server.url, sub.json.id);
    expect(done).toMatchObject({ state: 'succeeded', counts: { total: 2, succeeded: 0, failed: 2, running: 0 } });
    const lines = Object.fromEntries((await jobResults(server.url, sub.json.id)).map((l) => [l.key, l]));
    // demo takes FP32 tensors, not raw bytes: the input is wrong, and no retry can change that.
    expect(lines['bad/a.bin']).toMatchObject({ code: 'invalid_input', error: expect.stringMatching(/raw bodies are only for models with one BYTES input/) });
    // The last try's code, as every failed line has one.
    expect(lines['bad/missing.bin']).toMatchObject({ code: 'not_found', error: expect.stringMatching(/gave up after 2 tries: no object 'bad\/missing.bin'/) });
    const dlq = await server.jobs.queues.url('demo', true);
    const attrs = await server.env.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    // The dead letter was read (recorded as the item's outcome) and deleted.
    expect(Number(attrs.Attributes?.ApproximateNumberOfMessages)).toBe(0);
  }, 60_000);

  it('gives a redelivered message no second result and no second count', async () => {
    await put('in/two.jsonl', [request(1), request(2)].map((r) => JSON.stringify(r)).join('\n'));
    const sub = await submitJob(server.url, 'demo', { inputs: { jsonl: 'in/two.jsonl' }, output: { prefix: 'out/dup/' } });
    const done = await waitForJob(server.url, sub.json.id);
    expect(done.counts.succeeded).toBe(2);
    const before = await jobResults(server.url, sub.json.id);
    // The same item's message again, twice at once, as SQS may deliver it after a visibility timeout.
    const first = before[0];
    const msg = { jobId: sub.json.id, pipeline: 'demo', key: first.key, object: 'in/two.jsonl', format: 'request' as const, inline: JSON.stringify(request(1)) };
    const verdicts = await Promise.all([1, 2].map((n) => server.jobs.consumer.handle({ messageId: `m${n}`, receiptHandle: `r${n}`, body: JSON.stringify(msg), receiveCount: 2 })));
    expect(verdicts).toEqual(['done', 'done']);
    await server.jobs.queues.send('demo', [msg]);
    await new Promise((r) => setTimeout(r, 1_500));
    const after = await jobStatus(server.url, sub.json.id);
    expect(after.counts).toEqual(done.counts);
    expect(await jobResults(server.url, sub.json.id)).toEqual(before);
  });

  it('cancels: items not started are dropped, the ones waiting for a retry end, and the results say what ran', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `gone/${i}.bin`);
    const sub = await submitJob(server.url, 'demo', { inputs: { keys }, output: { prefix: 'out/cancel/' } });
    const del = await fetch(`${server.url}/v2/jobs/${sub.json.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(((await del.json()) as { state: string }).state).toBe('cancelled');
    const done = await waitForJob(server.url, sub.json.id, (s) => s.counts.running === 0 && s.output.manifest !== undefined, 30_000);
    expect(done.state).toBe('cancelled');
    expect(done.counts.succeeded).toBe(0);
    expect(done.counts.failed + done.counts.cancelled).toBe(12);
    expect((await jobResults(server.url, sub.json.id)).length).toBe(done.counts.failed);
    // A finished job is not cancelled again.
    const again = await fetch(`${server.url}/v2/jobs/${sub.json.id}`, { method: 'DELETE' });
    expect(again.status).toBe(409);
  }, 40_000);

  it('keeps fewer items in flight while synchronous requests are being answered, and all of them again after', async () => {
    const m = server.manifests.find((x) => x.name === 'overlap')!;
    const [full, quiet] = [inFlightFor(m), quietInFlightFor(m)];
    expect(quiet).toBeLessThan(full);
    const n = 24;
    await put('in/overlap.jsonl', Array.from({ length: n }, (_, i) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [i] }] })).join('\n'));
    // Each result row says how many of the job's items were in the stage when it began.
    const peak = async (prefix: string) => {
      const sub = await submitJob(server.url, 'overlap', { inputs: { jsonl: 'in/overlap.jsonl' }, output: { prefix } });
      expect(sub.status, JSON.stringify(sub.json)).toBe(202);
      expect((await waitForJob(server.url, sub.json.id)).counts.succeeded).toBe(n);
      const lines = await jobResults(server.url, sub.json.id);
      return Math.max(...lines.map((l) => ('outputs' in l ? (l.outputs[0] as { data: number[] }).data[0] : 0)));
    };
    // A synchronous run in flight for the whole job (as a long request would be).
    server.registry.activity.begin();
    try {
      expect(await peak('out/overlap-busy/')).toBeLessThanOrEqual(quiet);
    } finally {
      server.registry.activity.end();
    }
    // Past the hold after the last synchronous run, so the second job gets every place.
    await new Promise((r) => setTimeout(r, SYNC_HOLD_MS + 100));
    expect(await peak('out/overlap-idle/')).toBeGreaterThan(quiet);
  }, 60_000);

  it('refuses bad job requests with 400 and unknown models and jobs with 404', async () => {
    expect((await submitJob(server.url, 'demo', { inputs: {}, output: { prefix: 'o/' } })).status).toBe(400);
    expect((await submitJob(server.url, 'demo', { inputs: { keys: ['a'] } })).json.error).toMatch(/output/);
    expect((await submitJob(server.url, 'demo', { inputs: { keys: ['a', 'a'] }, output: { prefix: 'o/' } })).json.error).toMatch(/twice/);
    expect((await submitJob(server.url, 'demo', { inputs: { prefix: 'nothing-here/' }, output: { prefix: 'o/' } })).status).toBe(400);
    // The first job's results are there, under its output prefix: the same prefix as inputs and output says why it holds none.
    const same = await submitJob(server.url, 'demo', { inputs: { prefix: 'out/first' }, output: { prefix: 'out/first' } });
    expect(same.status).toBe(400);
    expect(same.json.error).toMatch(/objects are under the output prefix 'out\/first\/?'/);
    expect((await submitJob(server.url, 'nope', { inputs: { keys: ['a'] }, output: { prefix: 'o/' } })).status).toBe(404);
    expect((await fetch(`${server.url}/v2/jobs/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await fetch(`${server.url}/v2/jobs/not-a-job`)).status).toBe(400);
  });
});
