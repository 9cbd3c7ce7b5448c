/** `ensemble list`: from the server holding the data folder, else from the manifests in models/. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServe, type ServeProcess } from './helpers/cli.js';
import type { ListedPipeline } from '../packages/tools/src/cli/commands/list.js';

let root: string;
let server: ServeProcess | undefined;

beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'ensemble-list-')); });

afterAll(async () => {
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  await rm(root, { recursive: true, force: true });
});

describe('ensemble list', () => {
  it('with no server, reads every pipeline of models/ and says it is not running', async () => {
    const r = await runCli(['list', '--data', join(root, 'none'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as ListedPipeline[];
    expect(listed.map((p) => p.name).sort()).toEqual(['demo', 'ocr', 'ocr-split']);
    for (const p of listed) expect(p.state).toBe('not running');
    const ocr = listed.find((p) => p.name === 'ocr')!;
    expect(ocr.stages.find((s) => s.name === 'recognize')).toEqual({ name: 'recognize', kind: 'onnx', maxBatchSize: 1, instances: 2 });
    expect(ocr.stages.find((s) => s.name === 'decode')?.kind).toBe('function');

    const text = await runCli(['list', '--data', join(root, 'none')]);
    expect(text.stdout).toMatch(/^demo\s+1\s+not running\s+branch_a\s+onnx\s+32\s+1$/m);
  });

  it('asks the server holding the data folder: only what it serves, and whether it is ready', async () => {
    const data = join(root, 'data');
    server = await startServe(['--port', '0', '--data', data, '--pipeline', 'demo', '--quiet']);
    const r = await runCli(['list', '--data', data, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as ListedPipeline[];
    expect(listed).toEqual([{
      name: 'demo', versions: ['1'], state: 'ready',
      stages: [
        { name: 'branch_a', kind: 'onnx', maxBatchSize: 32, instances: 1 },
        { name: 'branch_b', kind: 'onnx', maxBatchSize: 32, instances: 1 },
        { name: 'average', kind: 'function', maxBatchSize: 32, instances: 1 },
      ],
    }]);
    const text = await runCli(['list', '--data', data]);
    expect(text.stdout).toMatch(/^demo\s+1\s+ready\s+branch_a/m);

    server.child.kill('SIGTERM');
    await server.exited;
    // The server gone, the same folder lists the manifests again.
    const after = await runCli(['list', '--data', data, '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as ListedPipeline[]).every((p) => p.state === 'not running')).toBe(true);
  }, 180_000);
});
