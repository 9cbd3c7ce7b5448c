/**
 * `ensemble serve` with pipelines that break and change while it runs: one
 * broken pipeline leaves the others serving, the model repository routes
 * load, reload and unload pipelines without a failed request, a reload of a
 * pipeline leaves the worker pools it shares with another pipeline serving,
 * and --watch reloads a pipeline whose folder changed.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { WorkerPoolTransport } from '../packages/core/src/transport/worker-pool.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { getJson, postJson } from './helpers/http.js';

const roots: string[] = [];
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ensemble-reload-'));
  roots.push(root);
  return root;
}

const SCALE_MODULE = `export default {
  process(item, ctx) {
    const x = item.x;
    return { y: { datatype: 'FP32', shape: [...x.shape], data: Float32Array.from(x.data, (v) => v * ctx.options.factor) } };
  },
};
`;

/** A pipeline of one function stage multiplying x by `options.factor`. */
async function scalePipeline(modelsDir: string, name: string, factor: number): Promise<void> {
  const dir = join(modelsDir, name);
  await mkdir(join(dir, 'stages'), { recursive: true });
  await writeFile(join(dir, 'stages', 'scale.mjs'), SCALE_MODULE);
  await writeFile(join(dir, 'pipeline.yaml'), scaleYaml(name, factor));
}

function scaleYaml(name: string, factor: number): string {
  return `name: ${name}
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - name: scale
    kind: function
    module: stages/scale.mjs
    inputs: [x]
    outputs: [y]
    options: { factor: ${factor} }
`;
}

async function start(modelsDir: string, extra: { watch?: boolean; log?: (line: string) => void } = {}): Promise<RunningServer> {
  const s = await startServer({ port: 0, dataDir: join(modelsDir, '..', 'data'), modelsDir, env: {}, log: () => undefined, ...extra });
  servers.push(s);
  return s;
}

const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
const infer = (s: RunningServer, name: string) => postJson(`${s.url}/v2/models/${name}/infer`, body);

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('one broken pipeline', () => {
  it('leaves the others serving; the broken ones are listed not ready with their errors and answer 503 with a run record', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'good', 2);
    await mkdir(join(models, 'badyaml'), { recursive: true });
    await writeFile(join(models, 'badyaml', 'pipeline.yaml'), 'name: [unclosed\n');
    await mkdir(join(models, 'badschema'), { recursive: true });
    await writeFile(join(models, 'badschema', 'pipeline.yaml'), 'name: badschema\ninputs: []\n');
    await mkdir(join(models, 'noweights'), { recursive: true });
    await writeFile(join(models, 'noweights', 'pipeline.yaml'), `name: noweights
inputs: [{ name: x, datatype: FP32, shape: [-1, 2] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 2] }]
stages:
  - { name: m, kind: onnx, weights: { key: noweights/m.onnx, source: build/missing.onnx }, inputs: { x: x }, outputs: { y: y } }
`);
    const lines: string[] = [];
    const s = await start(models, { log: (l) => lines.push(l) });
    // The line that says the server is up names what it serves, and only that.
    expect(lines.find((l) => l.startsWith('serving '))).toMatch(/^serving good \(not serving badschema, badyaml, noweights: failed to load\) on http/);

    const ok = await infer(s, 'good');
    expect(ok.status).toBe(200);
    expect(ok.body.outputs[0].data).toEqual([2, 4]);

    const list = await getJson(`${s.url}/v2/models`);
    const byName = Object.fromEntries(list.body.models.map((m: { name: string }) => [m.name, m]));
    expect(Object.keys(byName).sort()).toEqual(['badschema', 'badyaml', 'good', 'noweights']);
    expect(byName.good.ready).toBe(true);
    for (const bad of ['badyaml', 'badschema', 'noweights']) {
      expect(byName[bad].ready).toBe(false);
      expect(byName[bad].reason).toMatch(/^failed to load: /);
      const meta = await getJson(`${s.url}/v2/models/${bad}`);
      expect(meta.status).toBe(200);
      expect(meta.body.parameters.ready).toBe(false);
      expect(meta.body.parameters.reason).toBe(byName[bad].reason);
      const r = await infer(s, bad);
      expect(r.status).toBe(503);
      expect(r.body.error).toContain(`model '${bad}' failed to load`);
      const id = r.headers.get('x-ensemble-run-id');
      expect(id).toBeTruthy();
      const rec = await until('the run record', async () => {
        const got = await getJson(`${s.url}/v2/runs/${id}`);
        return got.status === 200 ? got.body : undefined;
      });
      expect(rec).toMatchObject({ pipeline: bad, status: 'failed', httpStatus: 503 });
    }
    expect(byName.badschema.reason).toContain('pipeline.yaml');
    expect((await getJson(`${s.url}/v2/health/ready`)).status).toBe(503);
  }, 60_000);

  it('refuses a models folder that does not exist, or holds no pipeline, naming it', async () => {
    const root = await tempDir();
    await expect(start(join(root, 'modles'))).rejects.toThrow(`models folder ${join(root, 'modles')} does not exist`);
    await mkdir(join(root, 'empty', 'notapipeline'), { recursive: true });
    await expect(start(join(root, 'empty'))).rejects.toThrow(`models folder ${join(root, 'empty')} holds no pipeline`);
  });

  it('refuses a port in use before loading any pipeline', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'good', 2);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    const lines: string[] = [];
    try {
      const err = await startServer({ port, dataDir: join(models, '..', 'data'), modelsDir: models, env: {}, log: (l) => lines.push(l) }).catch((e: unknown) => e);
      expect(String(err)).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(lines.filter((l) => l.startsWith('loaded'))).toEqual([]);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});

describe('the model repository routes', () => {
  it('reload a pipeline under steady traffic with only 200s, then serve the new answers', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'scale', 2);
    const s = await start(models);
    expect((await getJson(`${s.url}/v2`)).body.extensions).toContain('model_repository');

    const statuses: number[] = [];
    const answers = new Set<number>();
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        const r = await infer(s, 'scale');
        statuses.push(r.status);
        if (r.status === 200) answers.add(r.body.outputs[0].data[0]);
      }
    })();
    await until('some traffic', async () => (statuses.length >= 5 ? true : undefined));
    await writeFile(join(models, 'scale', 'pipeline.yaml'), scaleYaml('scale', 3));
    const load = await fetch(`${s.url}/v2/repository/models/scale/load`, { method: 'POST' });
    expect(load.status).toBe(200);
    const after = statuses.length;
    await until('traffic after the reload', async () => (statuses.length >= after + 5 ? true : undefined));
    stop = true;
    await traffic;
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(answers).toEqual(new Set([2, 3]));
    expect((await infer(s, 'scale')).body.outputs[0].data).toEqual([3, 6]);
  }, 60_000);

  it('keep the old version serving when a reload fails, and answer with the error', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'scale', 2);
    const s = await start(models);
    await writeFile(join(models, 'scale', 'pipeline.yaml'), scaleYaml('scale', 3).replace('inputs: [x]', 'inputs: [nope]'));
    const load = await postJson(`${s.url}/v2/repository/models/scale/load`, '');
    expect(load.status).toBeGreaterThanOrEqual(400);
    expect(load.body.error).toContain('nope');
    const r = await infer(s, 'scale');
    expect(r.status).toBe(200);
    expect(r.body.outputs[0].data).toEqual([2, 4]);
    expect((await postJson(`${s.url}/v2/repository/models/nothere/load`, '')).status).toBe(404);
    // tritonclient's load_model(config=..., files=...): a configuration of the request's own is refused, not ignored.
    const config = await postJson(`${s.url}/v2/repository/models/scale/load`, { parameters: { config: '{"max_batch_size":4}' } });
    expect(config.status).toBe(400);
    expect(config.body.error).toContain("'config' parameter is not supported");
    const files = await postJson(`${s.url}/v2/repository/models/scale/load`, { parameters: { 'file:1/model.onnx': 'AAAA' } });
    expect(files.status).toBe(400);
    expect(files.body.error).toContain("'file:1/model.onnx'");
    expect((await postJson(`${s.url}/v2/repository/models/scale/load`, '[1]')).status).toBe(400);
    // What tritonclient sends without them, and its unload's parameter (the folder fixed first).
    await writeFile(join(models, 'scale', 'pipeline.yaml'), scaleYaml('scale', 3));
    const post = (path: string, body: string) => fetch(`${s.url}/v2/repository/models/scale/${path}`, { method: 'POST', body });
    expect((await post('load', '{}')).status).toBe(200);
    expect((await post('unload', '{"parameters":{"unload_dependents":false}}')).status).toBe(200);
  }, 60_000);

  it('index, unload and load: an unloaded pipeline answers 503 and is listed UNAVAILABLE "unloaded"', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'scale', 2);
    await scalePipeline(models, 'other', 5);
    const s = await start(models);
    expect((await infer(s, 'scale')).status).toBe(200);
    expect((await getJson(`${s.url}/v2/models/scale/stats`)).body.model_stats[0].inference_count).toBeGreaterThan(0);
    expect((await postJson(`${s.url}/v2/repository/index`, '')).body).toEqual([
      { name: 'other', version: '1', state: 'READY', reason: '' },
      { name: 'scale', version: '1', state: 'READY', reason: '' },
    ]);
    expect((await fetch(`${s.url}/v2/repository/models/scale/unload`, { method: 'POST' })).status).toBe(200);
    const r = await infer(s, 'scale');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain('unloaded');
    expect((await infer(s, 'other')).status).toBe(200);
    // As Triton's: a model unloaded on purpose leaves the server ready (a readiness probe keeps the pod).
    expect((await getJson(`${s.url}/v2/health/ready`)).status).toBe(200);
    expect((await getJson(`${s.url}/v2/models/scale/ready`)).status).toBe(503);
    expect((await postJson(`${s.url}/v2/repository/index`, '')).body).toContainEqual({ name: 'scale', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });
    expect((await postJson(`${s.url}/v2/repository/index`, { ready: true })).body.map((m: { name: string }) => m.name)).toEqual(['other']);
    expect((await fetch(`${s.url}/v2/repository/models/nothere/unload`, { method: 'POST' })).status).toBe(404);

    // A new folder is loaded by name.
    await scalePipeline(models, 'added', 7);
    const count = async () => (await getJson(`${s.url}/v2/models/scale/stats`)).body.model_stats[0]?.inference_count;
    expect((await fetch(`${s.url}/v2/repository/models/scale/load`, { method: 'POST' })).status).toBe(200);
    // Loaded again, it counts from zero (as Triton's does), though its version is the same.
    expect(await count()).toBe(0);
    expect((await fetch(`${s.url}/v2/repository/models/added/load`, { method: 'POST' })).status).toBe(200);
    expect((await infer(s, 'scale')).body.outputs[0].data).toEqual([2, 4]);
    expect((await infer(s, 'added')).body.outputs[0].data).toEqual([7, 14]);
  }, 60_000);
});

describe('ensemble serve --watch', () => {
  it('reloads a pipeline whose manifest changed, and loads a new pipeline folder', async () => {
    const models = join(await tempDir(), 'models');
    await scalePipeline(models, 'scale', 2);
    const s = await start(models, { watch: true });
    expect((await infer(s, 'scale')).body.outputs[0].data).toEqual([2, 4]);
    await writeFile(join(models, 'scale', 'pipeline.yaml'), scaleYaml('scale', 4));
    await until('the reload', async () => {
      const r = await infer(s, 'scale');
      expect(r.status).toBe(200);
      return r.body.outputs[0].data[0] === 4 ? true : undefined;
    });
    await scalePipeline(models, 'fresh', 6);
    await until('the new folder', async () => {
      const r = await infer(s, 'fresh');
      return r.status === 200 ? r.body.outputs[0].data : undefined;
    }).then((data) => expect(data).toEqual([6, 12]));
  }, 60_000);
});

const REPO = join(import.meta.dirname, '..');

/**
 * The bundled ocr and ocr-split in a models folder of their own: ocr (and
 * node_modules, where both find their detector and classifier) linked to the
 * repository's, ocr-split a copy of its manifest next to a link to its built
 * models, so the test can change it.
 */
async function ocrModels(): Promise<{ models: string; splitYaml: string }> {
  const root = await tempDir();
  const models = join(root, 'models');
  await mkdir(join(models, 'ocr-split'), { recursive: true });
  await symlink(join(REPO, 'node_modules'), join(root, 'node_modules'));
  await symlink(join(REPO, 'models', 'ocr'), join(models, 'ocr'));
  // The copy has no build.ts of its own: on a clean clone the repository's cut recognisers are made first.
  await buildIfNeeded(await loadManifest(join(REPO, 'models', 'ocr-split', 'pipeline.yaml')));
  await symlink(join(REPO, 'models', 'ocr-split', 'build'), join(models, 'ocr-split', 'build'));
  const splitYaml = join(models, 'ocr-split', 'pipeline.yaml');
  await writeFile(splitYaml, await readFile(join(REPO, 'models', 'ocr-split', 'pipeline.yaml'), 'utf8'));
  return { models, splitYaml };
}

function exited(w: ChildProcess): boolean { return w.exitCode !== null || w.signalCode !== null; }

describe('worker pools shared between pipelines', () => {
  it('a reload of ocr-split keeps the detect worker it shares with ocr, which serves throughout; only its changed stage gets new workers', async () => {
    const { models, splitYaml } = await ocrModels();
    const s = await startServer({ port: 0, dataDir: join(models, '..', 'data'), modelsDir: models, env: {}, log: () => undefined });
    servers.push(s);
    const transport = s.registry.transport;
    expect(transport).toBeInstanceOf(WorkerPoolTransport);
    const pool = transport as WorkerPoolTransport;
    const workers = (name: string, stage: string) => pool.workersOf(s.registry.transportOf(name)!.address, stage);
    const shared = workers('ocr', 'detect');
    expect(shared).toHaveLength(1);
    // classify is inline (in the gateway) in both: no worker of its own.
    expect([...workers('ocr', 'classify'), ...workers('ocr-split', 'classify')]).toEqual([]);
    expect(workers('ocr-split', 'detect')).toEqual(shared);
    const recognize1 = workers('ocr-split', 'recognize_1');
    const recognize2 = workers('ocr-split', 'recognize_2');
    // ocr: detect, recognize x2; ocr-split adds recognize_1 and recognize_2.
    expect(pool.workerCount()).toBe(5);

    const png = await readFile(join(REPO, 'models', 'ocr', 'example.png'));
    const read = async (name: string) => {
      const r = await fetch(`${s.url}/v2/models/${name}/infer`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png });
      const body = (await r.json()) as { outputs?: { name: string; data: string[] }[] };
      return { status: r.status, text: body.outputs?.find((o) => o.name === 'text')?.data };
    };
    const expected = await read('ocr');
    expect(expected.status).toBe(200);
    expect(expected.text?.length).toBeGreaterThan(0);

    // Steady traffic on both while ocr-split reloads with two instances of recognize_2 instead of one.
    const answers: { name: string; status: number; text?: string[] }[] = [];
    let stop = false;
    const traffic = (name: string) => (async () => {
      while (!stop) answers.push({ name, ...(await read(name)) });
    })();
    const loops = [traffic('ocr'), traffic('ocr-split')];
    await until('some traffic', async () => (answers.length >= 4 ? true : undefined), 60_000);
    const yaml = await readFile(splitYaml, 'utf8');
    const changed = yaml.replace(/(- name: recognize_2\n[\s\S]*?scale: \{ instances: )1/, '$12');
    expect(changed).not.toBe(yaml);
    await writeFile(splitYaml, changed);
    const load = await fetch(`${s.url}/v2/repository/models/ocr-split/load`, { method: 'POST' });
    expect(load.status).toBe(200);
    const after = answers.length;
    await until('traffic after the reload', async () => (answers.length >= after + 4 ? true : undefined), 60_000);
    stop = true;
    await Promise.all(loops);

    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    for (const a of answers) expect(a.text).toEqual(expected.text);
    expect(s.registry.transportOf('ocr-split')!.address).toBe('ocr-split#2');
    // ocr's pools never changed hands; the new ocr-split joined them and its unchanged recognize_1.
    expect(shared.some(exited)).toBe(false);
    expect(workers('ocr', 'detect')).toEqual(shared);
    expect(workers('ocr-split', 'detect')).toEqual(shared);
    expect(workers('ocr-split', 'recognize_1')).toEqual(recognize1);
    // The changed stage runs on workers of its own, and the old version's one is gone.
    const fresh = workers('ocr-split', 'recognize_2');
    expect(fresh).toHaveLength(2);
    expect(fresh.some((w) => recognize2.includes(w))).toBe(false);
    expect(recognize2.every(exited)).toBe(true);
    expect(pool.workerCount()).toBe(6);
    expect((await read('ocr-split')).text).toEqual(expected.text);
    expect((await read('ocr')).text).toEqual(expected.text);
  }, 240_000);
});
