/**
 * Which requests leave a run record: createApp over a real DynamoRunStore on
 * dynalite, and a registry whose one pipeline failed to load.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { createApp } from '../../src/http/app.js';
import { loadManifest } from '../../src/manifest/load.js';
import { PipelineRegistry } from '../../src/pipelines/registry.js';
import { DynamoRunStore } from '../../src/storage/dynamo-runs.js';
import { ensureRunsTable } from '../../src/storage/runs-table.js';
import type { StageTransport } from '../../src/transport/types.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let local: Local;
let runs: DynamoRunStore;
let registry: PipelineRegistry;
let app: Hono;
const lines: string[] = [];

const brokenTransport: StageTransport = {
  kind: 'in-process',
  async load() { throw new Error('no weights here'); },
  async invoke() { throw new Error('not loaded'); },
  concurrency: () => 1,
  async close() {},
};

beforeAll(async () => {
  tmp = await tempDir('app-records');
  local = await startLocal(join(tmp.dir, 'data'));
  await ensureRunsTable(local.dynamo, local.settings.runsTable);
  runs = new DynamoRunStore({ dynamo: local.dynamo, table: local.settings.runsTable });
  const dir = join(tmp.dir, 'models', 'sick');
  await mkdir(join(dir, 'stages'), { recursive: true });
  await writeFile(join(dir, 'stages', 'pass.ts'), 'export default { process: (item: any) => ({ y: item.x }) };\n');
  await writeFile(join(dir, 'pipeline.yaml'), `
name: sick
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
stages:
  - { name: pass, kind: function, module: stages/pass.ts, inputs: [x], outputs: [y] }
`);
  registry = new PipelineRegistry(brokenTransport);
  await expect(registry.add(await loadManifest(join(dir, 'pipeline.yaml')))).rejects.toThrow('no weights here');
  app = createApp({ registry, runs, log: (l) => lines.push(l) });
});

afterAll(async () => {
  await runs?.flush();
  await registry?.close();
  await local?.close();
  await tmp?.cleanup();
});

const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [1] }] });
const post = (path: string) => app.request(path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

describe('run records at the gateway', () => {
  it('records a request to a known model that is not ready (503)', async () => {
    const res = await post('/v2/models/sick/infer');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: string }).error).toContain('no weights here');
    const id = res.headers.get('x-ensemble-run-id');
    expect(id).toBeTruthy();
    await runs.flush();
    expect(await runs.get(id!)).toMatchObject({ pipeline: 'sick', status: 'failed', httpStatus: 503 });
  });

  it('writes nothing for an unknown model, and logs it once', async () => {
    lines.length = 0;
    const res = await post('/v2/models/made-up/infer');
    expect(res.status).toBe(404);
    expect(res.headers.get('x-ensemble-run-id')).toBeNull();
    await runs.flush();
    expect(await runs.listByPipeline('made-up', 10)).toEqual([]);
    expect(lines.filter((l) => l.includes('/v2/models/made-up/infer'))).toHaveLength(1);
  });
});
