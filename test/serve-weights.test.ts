import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startServer } from '../packages/tools/src/serve/server.js';
import { loadPipelines } from '../packages/core/src/pipelines/load-all.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { startLocal, type Local } from '../packages/core/test/storage/local.js';
import { README_X, demoExpected, expectClose } from './helpers/demo.js';
import { getJson, postJson } from './helpers/http.js';
import { addDemo, writeDatatypesPipeline } from './helpers/pipelines.js';

let root: string;
let modelsDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-serve-weights-'));
  modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  await writeDatatypesPipeline(modelsDir);
});
afterAll(async () => { if (root) await rm(root, { recursive: true, force: true }); });

const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: README_X }] };

describe('weights the server loads are the weights the manifest pins', () => {
  it('fetches a changed cached file again after a restart and answers with the real numbers', async () => {
    const dataDir = join(root, 'data-cache');
    const quiet = { port: 0, dataDir, modelsDir, pipelines: ['demo'], env: {}, log: () => undefined };
    let server = await startServer(quiet);
    const first = await postJson(`${server.url}/v2/models/demo/infer`, body);
    expect(first.status).toBe(200);
    await server.close();

    // One float changed in every cached weights file: the bytes still parse as a model with other numbers.
    const cache = join(dataDir, 'cache', 'sha256');
    const files = (await readdir(cache)).filter((f) => /^[0-9a-f]{64}$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = await readFile(join(cache, f));
      bytes.writeFloatLE(bytes.readFloatLE(bytes.length - 8) + 1.75, bytes.length - 8);
      await writeFile(join(cache, f), bytes);
    }

    server = await startServer(quiet);
    try {
      const again = await postJson(`${server.url}/v2/models/demo/infer`, body);
      expect(again.status).toBe(200);
      expectClose(again.body.outputs[0].data, demoExpected(README_X));
    } finally {
      await server.close();
    }
  }, 120_000);

  it('a damaged object in the bucket fails its own pipeline only, naming key and hashes; push repairs it', async () => {
    const local: Local = await startLocal(join(root, 'aws'));
    try {
      await ensureBucket(local.s3, 'weights');
      const manifests = await loadPipelines(modelsDir);
      for (const m of manifests) await pushPipeline(m, { s3: local.s3, bucket: 'weights' });
      const demo = manifests.find((m) => m.name === 'demo')!;
      const stage = demo.stages.find((s) => s.kind === 'onnx')!;
      if (stage.kind !== 'onnx') throw new Error('unreachable');
      const got = await local.s3.send(new GetObjectCommand({ Bucket: 'weights', Key: stage.weights.key }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      bytes[bytes.length - 3] ^= 0x40;
      await local.s3.send(new PutObjectCommand({ Bucket: 'weights', Key: stage.weights.key, Body: bytes, Metadata: { sha256: stage.weights.sha256 } }));

      const { s3Endpoint, dynamoEndpoint, credentials } = local.settings;
      const env = {
        ENSEMBLE_S3_ENDPOINT: s3Endpoint, ENSEMBLE_DYNAMODB_ENDPOINT: dynamoEndpoint, ENSEMBLE_BUCKET: 'weights', ENSEMBLE_RUNS_TABLE: 'runs',
        AWS_ACCESS_KEY_ID: credentials!.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials!.secretAccessKey, ENSEMBLE_CREATE_RESOURCES: '1',
      };
      const server = await startServer({ port: 0, dataDir: join(root, 'data-remote'), modelsDir, env, log: () => undefined });
      try {
        expect((await getJson(`${server.url}/v2/health/ready`)).status).toBe(503);
        expect(await getJson(`${server.url}/v2/models/dtypes/ready`)).toMatchObject({ status: 200, body: { ready: true } });
        const refused = await postJson(`${server.url}/v2/models/demo/infer`, body);
        expect(refused.status).toBe(503);
        expect(refused.body.error).toContain(stage.weights.key);
        expect(refused.body.error).toContain(stage.weights.sha256);
        expect(refused.body.error).toMatch(/has sha256 [0-9a-f]{64}/);
        const meta = await getJson(`${server.url}/v2/models/demo`);
        expect(meta.body.parameters).toMatchObject({ ready: false, reason: expect.stringContaining('failed to load') });
      } finally {
        await server.close();
      }

      const lines: string[] = [];
      await pushPipeline(demo, { s3: local.s3, bucket: 'weights', log: (s) => lines.push(s) });
      expect(lines.find((l) => l.includes(stage.weights.key))).toMatch(/^repaired/);
    } finally {
      await local.close();
    }
  }, 120_000);
});
