/**
 * `npm start -- --transport lambda` runs batch jobs the way AWS does: the job
 * consumer is a function on the local Lambda host (functions/jobs.ts, as the
 * deployment plan names and sizes it), fed by an event source mapping loop
 * from the local queue, answering ReportBatchItemFailures; its stages are
 * reached with Invoke on the same host.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { LocalLambdaTransport } from '../packages/tools/src/lambda-host/local-transport.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { addDemo } from './helpers/pipelines.js';
import { demoExpected, expectClose } from './helpers/demo.js';
import { jobResults, submitJob, waitForJob } from './helpers/jobs.js';

let dir: string;
let server: RunningServer;
let transport: LocalLambdaTransport;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-jobs-lambda-'));
  await addDemo(join(dir, 'models'));
  server = await startServer({
    port: 0, dataDir: join(dir, 'data'), modelsDir: join(dir, 'models'), env: {}, log: () => undefined,
    transport: async (env) => {
      transport = await LocalLambdaTransport.start({ settings: env.settings, s3: env.s3, host: { tmpDir: join(dir, 'lambda') } });
      return transport;
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const row = (i: number) => [i / 4, 1 - i / 8, 0.5, -i / 16];

describe('batch jobs with --transport lambda', () => {
  it('runs a job through the consumer function on the local Lambda host, one result per item, the wrong input failed', async () => {
    const n = 40;
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: row(i) }] }));
    await server.env.s3.send(new PutObjectCommand({ Bucket: server.env.settings.bucket, Key: 'in/lambda.jsonl', Body: lines.join('\n') }));
    const sub = await submitJob(server.url, 'demo', { inputs: { jsonl: 'in/lambda.jsonl' }, output: { prefix: 'out/lambda/' } });
    expect(sub.status, JSON.stringify(sub.json)).toBe(202);
    const done = await waitForJob(server.url, sub.json.id, undefined, 90_000);
    expect(done).toMatchObject({ state: 'succeeded', counts: { total: n, succeeded: n, failed: 0, running: 0 } });
    const results = await jobResults(server.url, sub.json.id);
    expect(results).toHaveLength(n);
    for (const r of results) {
      const i = Number(r.key.split('#')[1]) - 1;
      expect('outputs' in r, JSON.stringify(r)).toBe(true);
      if ('outputs' in r) expectClose((r.outputs[0] as { data: number[] }).data, demoExpected(row(i)));
    }

    // The consumer function ran them: invocations of DemoJobs on the host, each an SQS event of at most its batch size.
    // The last invocation is reported when it returns, which may be just after its outcomes made the job succeed.
    let reports = transport.host.reports('DemoJobs');
    for (let i = 0; i < 100 && reports.length < Math.ceil(n / 10); i++) {
      await new Promise((r) => setTimeout(r, 100));
      reports = transport.host.reports('DemoJobs');
    }
    expect(reports.length).toBeGreaterThanOrEqual(Math.ceil(n / 10));
    expect(reports.every((r) => r.outcome === 'ok')).toBe(true);
    // Its run records come from the function's own store, tagged with the job and the Lambda transport.
    const first = results[0] as { runId: string };
    const rec = (await (await fetch(`${server.url}/v2/runs/${first.runId}`)).json()) as RunRecord;
    expect(rec).toMatchObject({ jobId: sub.json.id, transport: 'lambda', status: 'succeeded' });

    // An input no retry can fix fails at once: the handler reports no failure for it, and the loop deletes it.
    await server.env.s3.send(new PutObjectCommand({ Bucket: server.env.settings.bucket, Key: 'bad/raw.bin', Body: 'not a request' }));
    const bad = await submitJob(server.url, 'demo', { inputs: { keys: ['bad/raw.bin'] }, output: { prefix: 'out/lambda-bad/' } });
    const badDone = await waitForJob(server.url, bad.json.id, undefined, 60_000);
    expect(badDone).toMatchObject({ state: 'succeeded', counts: { total: 1, failed: 1 } });
    expect((await jobResults(server.url, bad.json.id))[0]).toMatchObject({ code: 'invalid_input' });
  }, 180_000);
});
