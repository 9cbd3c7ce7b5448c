/**
 * A job survives a kill -9 of `ensemble serve`: started again on the same
 * data folder, the server queues the items without an outcome again (the
 * local SQS emulator forgets its messages), and every input ends with exactly
 * one result line. Driven through the CLI (`ensemble job ...`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addDemo } from './helpers/pipelines.js';
import { runCli, startServe, type ServeProcess } from './helpers/cli.js';
import { jobResults, jobStatus, waitForJob } from './helpers/jobs.js';

let dir: string | undefined;
let serve: ServeProcess | undefined;

afterAll(async () => {
  if (serve && serve.child.exitCode === null) { serve.child.kill('SIGKILL'); await serve.exited; }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a job across a kill -9', () => {
  it('completes after a restart on the same data folder, one result line per input', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ensemble-jobs-restart-'));
    const models = join(dir, 'models');
    const data = join(dir, 'data');
    await addDemo(models);
    // The job must still be running when its counters first move, and they are written in groups up to 2 s
    // apart: batches of one keep few items in flight (jobs/sizing.ts), and 1,200 of them take several times that.
    const demo = join(models, 'demo', 'pipeline.yaml');
    await writeFile(demo, (await readFile(demo, 'utf8')).replace('batch: { max_size: 32, max_delay_ms: 0.1 }', 'batch: { max_size: 1, max_delay_ms: 0 }'));
    const n = 1200;
    const file = join(dir, 'requests.jsonl');
    await writeFile(file, Array.from({ length: n }, (_, i) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [i, 1, 2, 3] }] })).join('\n'));
    const args = ['--port', '0', '--data', data, '--models', models];
    serve = await startServe(args);

    const sub = await runCli(['job', 'submit', 'demo', file, '--jsonl', '--url', serve.url, '--data', data]);
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // Mid-job: some items have their outcome, most do not.
    const mid = await waitForJob(serve.url, id, (s) => s.counts.succeeded >= 10, 60_000);
    expect(mid.counts.succeeded).toBeLessThan(n);
    serve.child.kill('SIGKILL');
    expect((await serve.exited).signal).toBe('SIGKILL');

    serve = await startServe(args);
    const done = await waitForJob(serve.url, id, undefined, 120_000);
    expect(done).toMatchObject({ state: 'succeeded', counts: { total: n, succeeded: n, failed: 0, running: 0, queued: 0 } });
    const lines = await jobResults(serve.url, id);
    expect(lines).toHaveLength(n);
    expect(new Set(lines.map((l) => l.key)).size).toBe(n);

    // The CLI's view of the same job.
    const status = await runCli(['job', 'status', id, '--url', serve.url]);
    expect(status.stdout).toMatch(new RegExp(`^succeeded .* 100% ${n}/${n}`, 'm'));
    const out = join(dir, 'results.jsonl');
    const results = await runCli(['job', 'results', id, '--out', out, '--url', serve.url]);
    expect(results.code, results.stderr).toBe(0);
    expect(results.stderr).toMatch(new RegExp(`${n} result lines`));
    expect((await jobStatus(serve.url, id)).output.manifest).toBeDefined();

    // Mistakes said before anything is uploaded: a pipeline the server does not serve, a local folder that is not there.
    const unknown = await runCli(['job', 'submit', 'nope', file, '--jsonl', '--url', serve.url, '--data', data]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("GET /v2/models/nope answered 404: unknown model 'nope'");
    expect(unknown.stderr).not.toContain('uploading');
    const missing = await runCli(['job', 'submit', 'demo', join(dir, 'no-such-folder'), '--url', serve.url, '--data', data]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`no such folder: ${join(dir, 'no-such-folder')}`);
  }, 300_000);
});
