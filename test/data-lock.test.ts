import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { LOCK_FILE } from '../packages/tools/src/serve/data-lock.js';
import { README_BODY, README_X, demoExpected, expectClose } from './helpers/demo.js';
import { postJson } from './helpers/http.js';
import { addDemo } from './helpers/pipelines.js';
import { runCli } from './helpers/cli.js';

let root: string;
let modelsDir: string;
let dataDir: string;
let server: RunningServer | undefined;
const body = JSON.parse(README_BODY) as unknown;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-lock-'));
  modelsDir = join(root, 'models');
  dataDir = join(root, 'data');
  await addDemo(modelsDir);
  server = await startServer({ port: 0, dataDir, modelsDir, env: {}, log: () => undefined });
});
afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('one server per data folder', () => {
  it('records the pid and URL of the server holding the folder', async () => {
    const lock = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'));
    expect(lock).toMatchObject({ pid: process.pid, url: server!.url });
  });

  it('refuses a second server on the folder at once, naming the pid, and the first keeps serving', async () => {
    const err = await startServer({ port: 0, dataDir, modelsDir, env: {}, log: () => undefined }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`data folder ${dataDir} is in use by pid ${process.pid} (serving on ${server!.url})`);

    // As a process: a clear error and exit 1, no stack trace.
    const r = await runCli(['serve', '--port', '0', '--data', dataDir, '--models', modelsDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: data folder ${dataDir} is in use by pid ${process.pid}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const again = await postJson(`${server!.url}/v2/models/demo/infer`, body);
    expect(again.status).toBe(200);
    expectClose(again.body.outputs[0].data, demoExpected(README_X));
  }, 60_000);

  it('has infer, runs and push find the running server through the folder, whatever its port', async () => {
    const inferred = await runCli(['infer', 'demo', '--data', dataDir, '--body', README_BODY, '--json']);
    expect(inferred.stderr).toBe('');
    expect(inferred.code).toBe(0);
    const runId = JSON.parse(inferred.stdout).parameters.run_id as string;
    await server!.env.runs.flush();

    const listed = await runCli(['runs', 'demo', '--data', dataDir]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(runId);

    const pushed = await runCli(['push', 'demo', '--data', dataDir]);
    expect(pushed.stderr).not.toMatch(/\n\s+at /);
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toMatch(/up to date\s+s3:\/\//);
    expect(pushed.stdout).toContain('recorded demo v1');
  }, 90_000);

  it('takes over a lock left by a process that is gone', async () => {
    await server!.close();
    server = undefined;
    const gone = spawnSync(process.execPath, ['-e', '']);
    expect(gone.status).toBe(0);
    await writeFile(join(dataDir, LOCK_FILE), JSON.stringify({ pid: gone.pid, id: 'old', startedAt: new Date(0).toISOString(), url: 'http://127.0.0.1:1' }));
    server = await startServer({ port: 0, dataDir, modelsDir, env: {}, log: () => undefined });
    expect(JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid, url: server.url });
    expect((await postJson(`${server.url}/v2/models/demo/infer`, body)).status).toBe(200);
  }, 60_000);
});
