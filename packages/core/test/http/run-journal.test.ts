/**
 * Run records through the journal at the gateway: createApp over a
 * JournaledRunStore in front of a DynamoRunStore on dynalite, with a pipeline
 * of one function stage.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { createApp } from '../../src/http/app.js';
import { loadManifest } from '../../src/manifest/load.js';
import { PipelineRegistry } from '../../src/pipelines/registry.js';
import { DynamoRunStore } from '../../src/storage/dynamo-runs.js';
import { JournaledRunStore } from '../../src/storage/journal.js';
import { ensureRunsTable } from '../../src/storage/runs-table.js';
import { makeDynamoClient } from '../../src/storage/config.js';
import type { RunRecord } from '../../src/storage/types.js';
import type { StageTransport } from '../../src/transport/types.js';
import { port, startLocal, tempDir, type Local } from '../storage/local.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let local: Local;
let registry: PipelineRegistry;
let manifestFile: string;

const noOnnx: StageTransport = {
  kind: 'in-process',
  async load() {},
  async invoke() { throw new Error('no ONNX stages here'); },
  concurrency: () => 1,
  async close() {},
};

beforeAll(async () => {
  tmp = await tempDir('app-journal');
  local = await startLocal(join(tmp.dir, 'data'));
  await ensureRunsTable(local.dynamo, local.settings.runsTable);
  const dir = join(tmp.dir, 'models', 'echo');
  await mkdir(join(dir, 'stages'), { recursive: true });
  await writeFile(join(dir, 'stages', 'pass.ts'), 'export default { process: (item: any) => ({ y: item.x }) };\n');
  manifestFile = join(dir, 'pipeline.yaml');
  await writeFile(manifestFile, `
name: echo
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
stages:
  - { name: pass, kind: function, module: stages/pass.ts, inputs: [x], outputs: [y] }
`);
  registry = new PipelineRegistry(noOnnx);
  await registry.add(await loadManifest(manifestFile));
});

afterAll(async () => {
  await registry?.close();
  await local?.close();
  await tmp?.cleanup();
});

let journals = 0;
async function gateway(dynamo = local.dynamo, opts: { highWater?: number; lowWater?: number } = {}) {
  const logs: string[] = [];
  const table = new DynamoRunStore({ dynamo, table: local.settings.runsTable, onError: () => undefined });
  const runs = await JournaledRunStore.open({ dir: join(tmp.dir, `journal-${journals++}`), sink: table, log: (s) => logs.push(s), ...opts });
  const app = createApp({ registry, runs });
  return { app, runs, table, logs };
}

const infer = (app: Hono, inputs: unknown[] = [{ name: 'x', datatype: 'INT32', shape: [1], data: [1] }]) =>
  app.request('/v2/models/echo/infer', { method: 'POST', body: JSON.stringify({ inputs }), headers: { 'content-type': 'application/json' } });

describe('run records through the journal', () => {
  it('finds a run by id as soon as its response is out, with DynamoDB stopped', async () => {
    const dead = makeDynamoClient({ ...local.settings, dynamoEndpoint: 'http://127.0.0.1:9' });
    const { app, runs } = await gateway(dead);
    const res = await infer(app);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-ensemble-run-id')!;
    const got = await app.request(`/v2/runs/${id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ id, pipeline: 'echo', status: 'succeeded', httpStatus: 200 });
    expect(runs.unwritten).toBe(1);
    await runs.close({ drainMs: 10 });
    dead.destroy();
  });

  it('refuses with 503 and Retry-After past the high-water mark while DynamoDB is down, drops nothing, and takes requests again once it is back', async () => {
    // A dynalite of its own, stopped after its table exists and started again on the same port.
    const own = await tempDir('app-journal-down');
    const first = await startLocal(own.dir);
    await ensureRunsTable(first.dynamo, local.settings.runsTable);
    const ports = { s3Port: port(first.services.s3Endpoint), dynamoPort: port(first.services.dynamoEndpoint) };
    const settings = first.settings;
    await first.close();
    const dynamo = makeDynamoClient(settings);
    const { app, runs, table, logs } = await gateway(dynamo, { highWater: 10, lowWater: 5 });

    // In waves: admission looks at the records already waiting, not at requests still running.
    const answers: Response[] = [];
    for (let wave = 0; wave < 5; wave++) answers.push(...await Promise.all(Array.from({ length: 8 }, () => infer(app))));
    const accepted = answers.filter((r) => r.status === 200).map((r) => r.headers.get('x-ensemble-run-id')!);
    const refused = answers.filter((r) => r.status === 503);
    expect(accepted.length + refused.length).toBe(40);
    expect(accepted.length).toBeGreaterThanOrEqual(10);
    expect(refused.length).toBeGreaterThan(0);
    expect(Number(refused[0].headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused[0].json()) as { error: string }).error).toMatch(/run records are not being written fast enough/);
    expect(logs.join('\n')).toMatch(/refusing new infer requests with 503/);
    expect(logs.join('\n')).not.toMatch(/does not answer/);

    const back = await startLocal(own.dir, ports);
    try {
      await runs.flush();
      expect(logs.join('\n')).toMatch(/accepting infer requests again/);
      for (const id of accepted) expect(await table.get(id)).toMatchObject({ id, httpStatus: 200 });
      expect((await infer(app)).status).toBe(200);
      await runs.close();
    } finally {
      dynamo.destroy();
      await back.close();
      await own.cleanup();
    }
  });

  it('answers an input name of 500,000 characters with a short 400, and records it within the item limit', async () => {
    const { app, runs, table } = await gateway();
    const name = 'n'.repeat(500_000);
    const res = await infer(app, [{ name, datatype: 'INT32', shape: [1], data: [1] }]);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: string };
    expect(error.length).toBeLessThan(1_000);
    expect(error).toContain('…(499800 more)');
    const id = res.headers.get('x-ensemble-run-id')!;
    await runs.flush();
    const rec = (await table.get(id)) as RunRecord;
    expect(rec).toMatchObject({ id, status: 'failed', httpStatus: 400 });
    expect(rec.error).toBe(error);
    await runs.close();
  });

  it('answers a malformed run id with 400 without asking DynamoDB, and an unknown one with 404', async () => {
    const { app, runs } = await gateway();
    const long = await app.request(`/v2/runs/${'a'.repeat(3_000)}`);
    expect(long.status).toBe(400);
    const { error } = (await long.json()) as { error: string };
    expect(error).toMatch(/is not a run id/);
    expect(error.length).toBeLessThan(300);
    expect((await app.request('/v2/runs/not-a-uuid')).status).toBe(400);
    expect((await app.request('/v2/runs/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    await runs.close();
  });
});
