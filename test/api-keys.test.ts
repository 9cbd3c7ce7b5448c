import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBindingWarning, startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { README_BODY } from './helpers/demo.js';
import { addDemo, writeDatatypesPipeline } from './helpers/pipelines.js';

let root: string;
let server: RunningServer;
const logged: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-keys-'));
  const modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  await writeDatatypesPipeline(modelsDir);
  server = await startServer({
    port: 0, dataDir: join(root, 'data'), modelsDir, apiKey: 'main',
    env: { ENSEMBLE_API_KEYS: 'demo-only=demo;everything=*' }, log: (s) => logged.push(s),
  });
});
afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const call = async (path: string, key?: string, init: RequestInit = {}) => {
  const res = await fetch(`${server.url}${path}`, { ...init, headers: { ...(key ? { 'x-api-key': key } : {}), ...(init.headers as Record<string, string> | undefined) } });
  return { status: res.status, body: await res.json() as Record<string, any> };
};
const infer = (model: string, key: string, body: string) => call(`/v2/models/${model}/infer`, key, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

describe('API keys on the local server', () => {
  it('asks every route but health for a key, as on Lambda', async () => {
    expect((await call('/v2/health/ready')).status).toBe(200);
    expect((await call('/v2/health/live')).status).toBe(200);
    expect(await call('/v2/models')).toEqual({ status: 401, body: { error: 'missing API key: send it as x-api-key or Authorization: Bearer' } });
    expect((await call('/v2/models/demo', 'wrong')).status).toBe(401);
    expect((await call('/v2/models', 'main')).body.models.map((m: { name: string }) => m.name)).toEqual(['demo', 'dtypes']);
    expect(logged.some((l) => l.includes('warning'))).toBe(false);
  });

  it("keeps a pipeline-scoped key to its pipelines: 403 on others' routes, and only its own listed", async () => {
    expect((await call('/v2/models', 'demo-only')).body.models.map((m: { name: string }) => m.name)).toEqual(['demo']);
    expect((await infer('demo', 'demo-only', README_BODY)).status).toBe(200);
    for (const path of ['/v2/models/dtypes', '/v2/models/dtypes/ready', '/v2/models/dtypes/runs']) {
      expect(await call(path, 'demo-only'), path).toEqual({ status: 403, body: { error: "this API key may not use model 'dtypes'" } });
    }
    const refused = await infer('dtypes', 'demo-only', '{"inputs":[]}');
    expect(refused.status).toBe(403);
    expect((await call('/v2/models', 'everything')).body.models).toHaveLength(2);

    // A run of another pipeline, found by id, is no run for this key.
    expect((await infer('dtypes', 'everything', '{"inputs":[]}')).status).toBe(400);
    await server.env.runs.flush();
    const runId = (await call('/v2/models/dtypes/runs?limit=1', 'everything')).body.runs[0].id as string;
    expect((await call(`/v2/runs/${runId}`, 'everything')).status).toBe(200);
    expect((await call(`/v2/runs/${runId}`, 'demo-only')).status).toBe(404);
  });

  it('scopes stage models and statistics to their pipeline', async () => {
    expect((await call('/v2/models/demo.branch_a/config', 'demo-only')).status).toBe(200);
    expect((await call('/v2/models/dtypes.identity/config', 'demo-only')).status).toBe(403);
    expect((await call('/v2/models/dtypes/stats', 'demo-only')).status).toBe(403);
    const stats = await call('/v2/models/stats', 'demo-only');
    expect(stats.status).toBe(200);
    expect(new Set(stats.body.model_stats.map((m: { name: string }) => m.name.split('.')[0]))).toEqual(new Set(['demo']));
    expect((await call('/v2/models/stats')).status).toBe(401);
  });

  it('warns when it listens beyond loopback without a key', () => {
    expect(openBindingWarning('0.0.0.0', 0)).toMatch(/^warning: listening on 0\.0\.0\.0 with no API key/);
    expect(openBindingWarning('192.168.1.7', 0)).toMatch(/no API key/);
    expect(openBindingWarning('0.0.0.0', 1)).toBeUndefined();
    for (const host of ['127.0.0.1', 'localhost', '::1']) expect(openBindingWarning(host, 0)).toBeUndefined();
  });
});
