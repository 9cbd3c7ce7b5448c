/**
 * The stage function's init as its entry runs it: the weights started before
 * the handler's module is loaded (startStageWeights), then the handler made
 * with them. Against s3rver and real ONNX Runtime.
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBucket } from '@ensemble/tools/local/bucket.js';
import { buildIfNeeded } from '@ensemble/tools/pipelines/build.js';
import { pushPipeline } from '@ensemble/tools/pipelines/push.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { Manifest, OnnxStage } from '../../src/manifest/types.js';
import { startStageWeights } from '../../src/lambda/stage-weights.js';
import { createStageHandler } from '../../src/lambda/stage.js';
import { decodeStageResponse, encodeStageRequest } from '../../src/lambda/payload.js';
import { startLocal, tempDir, type Local } from '../storage/local.js';

const DEMO = fileURLToPath(new URL('../../../../models/demo/pipeline.yaml', import.meta.url));

describe('a stage function\'s init, weights first', () => {
  let local: Local;
  let work: { dir: string; cleanup(): Promise<void> };
  let demo: Manifest;
  let env: Record<string, string>;

  beforeAll(async () => {
    work = await tempDir('stage-weights');
    local = await startLocal(join(work.dir, 'data'));
    await ensureBucket(local.s3, 'weights');
    demo = await loadManifest(DEMO);
    await buildIfNeeded(demo);
    await pushPipeline(demo, { s3: local.s3, bucket: 'weights' });
    env = {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: local.services.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: local.services.credentials.secretAccessKey,
      ENSEMBLE_S3_ENDPOINT: local.services.s3Endpoint,
      ENSEMBLE_BUCKET: 'weights',
      ENSEMBLE_PIPELINE: 'demo',
      ENSEMBLE_STAGE: 'branch_a',
      ENSEMBLE_MANIFEST: DEMO,
    };
  });
  afterAll(async () => {
    await local?.close();
    await work?.cleanup();
  });

  it('fetches into an empty cache, runs the stage, and a second start over the same cache skips the fetch', async () => {
    const cacheEnv = { ...env, ENSEMBLE_CACHE_DIR: join(work.dir, 'cache') };
    const first = await startStageWeights(cacheEnv);
    const branchA = demo.stages.find((s) => s.name === 'branch_a') as OnnxStage;
    expect(await first.modelPath).toBe(join(work.dir, 'cache', 'sha256', branchA.weights.sha256));
    expect(first.store.timing(branchA.weights.sha256)!.fetchMs).toBeGreaterThan(0);

    const handler = await createStageHandler(cacheEnv, { weights: Promise.resolve(first), metricsLog: () => undefined });
    const out = decodeStageResponse(await handler(encodeStageRequest('demo', 'branch_a', [{ input: { datatype: 'FP32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) } }])), 'branch_a');
    expect(out.outcomes[0].ok).toBe(true);
    expect(out.coldStartSplit!.fetchMs).toBeGreaterThan(0);
    expect(out.coldStartSplit!.startMs).toBe(first.startedAt);

    const again = await startStageWeights(cacheEnv);
    await again.modelPath;
    expect(again.store.timing(branchA.weights.sha256)).toEqual({ fetchMs: 0, hashMs: expect.any(Number) });
    again.s3.destroy();
  });

  it('a wrong sha256 in the manifest: every call answers not_ready naming the object and both hashes, nothing is cached', async () => {
    const branchA = demo.stages.find((s) => s.name === 'branch_a') as OnnxStage;
    const wrong = 'ab'.repeat(32);
    const dir = join(work.dir, 'wrong');
    await mkdir(dir, { recursive: true });
    await cp(join(dirname(DEMO), 'stages'), join(dir, 'stages'), { recursive: true });
    const manifest = join(dir, 'pipeline.yaml');
    await writeFile(manifest, (await readFile(DEMO, 'utf8')).replace(branchA.weights.sha256, wrong));
    const wrongEnv = { ...env, ENSEMBLE_MANIFEST: manifest, ENSEMBLE_CACHE_DIR: join(work.dir, 'wrong-cache') };

    const handler = await createStageHandler(wrongEnv, { weights: startStageWeights(wrongEnv), metricsLog: () => undefined });
    for (let i = 0; i < 2; i++) {
      const answer = await handler(encodeStageRequest('demo', 'branch_a', [{ input: { datatype: 'FP32', shape: [4], data: new Float32Array(4) } }]));
      expect(answer).toMatchObject({ ok: false, code: 'not_ready' });
      const error = (answer as { error: string }).error;
      expect(error).toContain('s3://weights/demo/branch_a.onnx');
      expect(error).toContain(`has sha256 ${branchA.weights.sha256}, expected ${wrong}`);
    }
    expect(await readdir(join(work.dir, 'wrong-cache', 'sha256'))).toEqual([]);
  });
});
