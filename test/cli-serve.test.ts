/**
 * The user path from the README: `ensemble serve`, curl-style requests,
 * `ensemble runs`, then SIGTERM — and the run record must have been flushed.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { README_BODY, README_X, demoExpected, expectClose } from './helpers/demo.js';
import { runCli, startServe, type ServeProcess } from './helpers/cli.js';

let root: string;
let data: string;
let server: ServeProcess | undefined;
let slowServer: ServeProcess | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-cli-'));
  data = join(root, 'data');
});

afterAll(async () => {
  // Only if a failed test left one running: the tests stop them with SIGTERM themselves.
  for (const s of [server, slowServer]) {
    if (s && s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
  }
  await rm(root, { recursive: true, force: true });
});

describe('ensemble serve, as the README shows it', () => {
  let runId = '';

  it('starts on a free port with a fresh data folder and becomes ready', async () => {
    // Only the demo: other pipelines in models/ are not what this test is about.
    server = await startServe(['--port', '0', '--data', data, '--pipeline', 'demo']);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const live = await fetch(`${server.url}/v2/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ live: true });
    const ready = await fetch(`${server.url}/v2/health/ready`);
    expect(await ready.json()).toEqual({ ready: true });
    const meta = await fetch(`${server.url}/v2/models/demo`);
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ name: 'demo', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }] });
  }, 180_000);

  it('answers the README request with the numbers plain JS computes from the demo weights', async () => {
    const res = await fetch(`${server!.url}/v2/models/demo/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: README_BODY,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; datatype: string; shape: number[]; data: number[] }[]; parameters: { run_id: string } };
    expect(body.outputs).toHaveLength(1);
    expect(body.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [2, 3] });
    expectClose(body.outputs[0].data, demoExpected(README_X));
    runId = res.headers.get('x-ensemble-run-id') ?? '';
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.parameters.run_id).toBe(runId);
  });

  it('writes one access log line per request on stdout, with the run id and pipeline', async () => {
    const lines = () => server!.stdout().split('\n').filter((l) => l.includes(runId));
    for (let i = 0; i < 50 && !lines().length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(new RegExp(`^POST /v2/models/demo/infer 200 \\d+\\.\\dms run=${runId} pipeline=demo$`));
    expect(server!.stdout()).toMatch(/^GET \/v2\/health\/ready 200 /m);
  });

  it('answers `ensemble infer demo --body` with the same numbers', async () => {
    const r = await runCli(['infer', 'demo', '--url', server!.url, '--body', README_BODY]);
    expect(r.code, r.stderr).toBe(0);
    const response = JSON.parse(r.stdout) as { outputs: { data: number[] }[] };
    expectClose(response.outputs[0].data, demoExpected(README_X));
  });

  it('lists the run with `ensemble runs demo --url`', async () => {
    // Run records are written off the request path; give the writer a moment if needed.
    let r = await runCli(['runs', 'demo', '--url', server!.url]);
    for (let i = 0; i < 50 && r.code === 0 && !r.stdout.includes(runId); i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await runCli(['runs', 'demo', '--url', server!.url]);
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(runId);
    const line = r.stdout.split('\n').find((l) => l.includes(runId))!;
    expect(line).toContain('succeeded 200');
    expect(line).toMatch(/branch_a\[\d+\]/);
  });

  it('drains and exits 0 on SIGTERM, with the run record flushed to the data folder', async () => {
    // A second request right before SIGTERM: its record must not be lost in the shutdown.
    const res = await fetch(`${server!.url}/v2/models/demo/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: README_BODY,
    });
    expect(res.status).toBe(200);
    const lastId = res.headers.get('x-ensemble-run-id')!;
    const url = server!.url;
    server!.child.kill('SIGTERM');
    const { code, signal } = await server!.exited;
    expect(signal).toBeNull();
    expect(code, server!.stderr()).toBe(0);
    expect(server!.stderr()).toContain('SIGTERM');

    // Nothing answers at the old URL now, so `runs` reads the data folder itself.
    const r = await runCli(['runs', 'demo', '--url', url, '--data', data, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const runs = JSON.parse(r.stdout) as RunRecord[];
    expect(runs.map((x) => x.id)).toEqual(expect.arrayContaining([runId, lastId]));
    // Newest first.
    expect(runs[0].id).toBe(lastId);
    const first = runs.find((x) => x.id === runId)!;
    expect(first).toMatchObject({ pipeline: 'demo', status: 'succeeded', httpStatus: 200 });
    expect(first.stages.map((s) => s.stage).sort()).toEqual(['average', 'branch_a', 'branch_b']);
  }, 120_000);
});

describe('ensemble serve shutdown', () => {
  it('finishes a request that is mid-stage when SIGTERM arrives, records it, and exits 0', async () => {
    const models = join(root, 'models');
    const marker = join(root, 'stage-started');
    await mkdir(join(models, 'slow', 'stages'), { recursive: true });
    // The stage tells the test it has started (a file), then takes its time.
    await writeFile(join(models, 'slow', 'stages', 'slow.ts'), `
import { writeFileSync } from 'node:fs';
export default {
  async process(item: any, ctx: any) {
    writeFileSync(ctx.options.marker, 'started');
    await new Promise((r) => setTimeout(r, 700));
    return { y: item.x };
  },
};
`);
    await writeFile(join(models, 'slow', 'pipeline.yaml'), `
name: slow
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: slow
    kind: function
    module: stages/slow.ts
    inputs: [x]
    outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
    options: { marker: ${JSON.stringify(marker)} }
`);
    const slowData = join(root, 'slow-data');
    slowServer = await startServe(['--port', '0', '--data', slowData, '--models', models, '--quiet']);
    const pending = fetch(`${slowServer.url}/v2/models/slow/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [3, 4] }] }),
    });
    for (let i = 0; !existsSync(marker); i++) {
      if (i > 600) throw new Error(`the slow stage never started\n${slowServer.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    slowServer.child.kill('SIGTERM');
    const res = await pending;
    expect(res.status).toBe(200);
    // fetch keeps connections alive; a server shutting down must not offer to keep this one.
    expect(res.headers.get('connection')).toBe('close');
    const body = (await res.json()) as { outputs: { data: number[] }[] };
    expect(body.outputs[0].data).toEqual([3, 4]);
    const id = res.headers.get('x-ensemble-run-id')!;
    const { code } = await slowServer.exited;
    expect(code, slowServer.stderr()).toBe(0);
    // --quiet: no access log.
    expect(slowServer.stdout()).not.toContain('/v2/');

    const r = await runCli(['runs', 'slow', '--url', slowServer.url, '--data', slowData, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const runs = JSON.parse(r.stdout) as RunRecord[];
    expect(runs.map((x) => x.id)).toEqual([id]);
    expect(runs[0]).toMatchObject({ status: 'succeeded', httpStatus: 200 });
  }, 180_000);
});

describe('ensemble serve shutdown with a client that stalls', () => {
  it('closes a connection still unanswered at the drain deadline, and exits 0', async () => {
    const stalledData = join(root, 'stalled');
    const s = await startServe(['--port', '0', '--data', stalledData, '--pipeline', 'demo', '--quiet', '--drain-timeout', '1']);
    try {
      const { port } = new URL(s.url);
      // Headers and 10 of the 80 body bytes they promise, then nothing: without a deadline this holds the server open.
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write('POST /v2/models/demo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{"inputs":');
      const socketClosed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.on('error', () => undefined);
      // Until the gateway has the request (it waits on the body): then it is in flight, not an idle connection.
      for (let i = 0; ; i++) {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        if (/^nv_inference_pending_request_count\{model="demo"[^}]*\} 1$/m.test(text)) break;
        if (i > 200) throw new Error(`the stalled request never became pending\n${text}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      s.child.kill('SIGTERM');
      // Exits at all: without the deadline it waits for the client, which never sends the rest.
      const { code } = await s.exited;
      expect(code, s.stderr()).toBe(0);
      expect(s.stderr()).toContain('unanswered after 1000 ms of draining: closing their connections');
      await socketClosed;
      // Its record says the client went away (499), not that it sent a bad body.
      const r = await runCli(['runs', 'demo', '--data', stalledData, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const runs = JSON.parse(r.stdout) as RunRecord[];
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ status: 'failed', httpStatus: 499 });
    } finally {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    }
  }, 180_000);
});

describe('ensemble serve killed with SIGKILL', () => {
  it('loses no answered request: the next start replays the run record journal', async () => {
    const killedData = join(root, 'killed');
    const killed = await startServe(['--port', '0', '--data', killedData, '--pipeline', 'demo', '--quiet']);
    const ids: string[] = [];
    try {
      // Ten at a time, as concurrent clients: records share group commits.
      for (let wave = 0; wave < 5; wave++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`${killed.url}/v2/models/demo/infer`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: README_BODY,
        })));
        for (const a of answers) {
          expect(a.status).toBe(200);
          ids.push(a.headers.get('x-ensemble-run-id')!);
          await a.arrayBuffer();
        }
      }
    } finally {
      killed.child.kill('SIGKILL');
    }
    expect((await killed.exited).signal).toBe('SIGKILL');

    const r = await runCli(['runs', 'demo', '--url', killed.url, '--data', killedData, '--json', '--limit', '100']);
    expect(r.code, r.stderr).toBe(0);
    const listed = new Set((JSON.parse(r.stdout) as RunRecord[]).map((x) => x.id));
    expect(ids.filter((id) => !listed.has(id))).toEqual([]);
  }, 120_000);
});
