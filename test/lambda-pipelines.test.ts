/**
 * The deployed gateway (createLambdaGateway, driven with function URL events)
 * running the demo and OCR pipelines through LambdaTransport and the real
 * @aws-sdk/client-lambda, against the local Lambda host running the real stage
 * handler (functions/stage.ts) in its own processes, with functions exactly as
 * planDeployment describes them; checked against the same gateway with the
 * stages in-process. Then the Lambda path's edges: a 10 MB intermediate tensor
 * through S3, throttling, a stage that throws, a stage past its timeout.
 */
import path, { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'hono/aws-lambda';
import { startLocalServices, withLocalServices, type LocalServices } from '../packages/tools/src/local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv, type AwsSettings } from '../packages/core/src/storage/config.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { ensureRunsTable } from '../packages/core/src/storage/runs-table.js';
import { S3WeightStore } from '../packages/core/src/storage/s3-weights.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { Manifest } from '../packages/core/src/manifest/types.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { planDeployment } from '../packages/tools/src/deploy/plan.js';
import { createLambdaGateway, type LambdaGateway } from '../packages/core/src/lambda/gateway.js';
import { InProcessTransport } from '../packages/core/src/transport/in-process.js';
import { LambdaHost } from '../packages/tools/src/lambda-host/host.js';
import {
  componentNames, gatewayStageEnvironment, hostedStageFunctions, storageEnvironment,
} from '../packages/tools/src/lambda-host/from-plan.js';
import type { HostedFunction } from '../packages/tools/src/lambda-host/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { urlEvent } from '../packages/tools/test/lambda-host/events.js';
import { BULKY_WIDTH, writeBulkyPipeline, writeFaultyPipeline } from '../packages/tools/test/lambda-host/pipelines.js';
import { demoExpected, expectClose, README_X } from './helpers/demo.js';
import { ocrSampleSpecs } from './helpers/ocr-samples.js';
import { renderTextImage } from '../packages/tools/src/bench/render.js';
import { REPO } from './helpers/pipelines.js';

const API_KEY = 'lambda-pipelines-key';
const FIXTURES = path.join(REPO, 'packages/tools/test/lambda-host/fixtures');
const withKey = { 'x-api-key': API_KEY };

let dir: string;
let services: LocalServices;
let settings: AwsSettings;
let s3: S3Client;
let host: LambdaHost;
let manifests: Record<string, Manifest>;
/** Environment of every gateway here: storage, key, manifests. */
let gatewayEnv: Record<string, string>;
/** What the deployed gateway gets from the plan: which function serves which stage. */
let stageFunctions: Record<string, string>;
const gateways: LambdaGateway[] = [];
let lambda: LambdaGateway;
let inProcess: LambdaGateway;
const functionLogs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-lambda-pipelines-'));
  services = await startLocalServices({ dataDir: join(dir, 'data') });
  settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  await ensureBucket(s3, settings.bucket);
  await ensureRunsTable(dynamo, settings.runsTable);
  dynamo.destroy();

  const testModels = join(dir, 'models');
  const files = {
    demo: join(REPO, 'models/demo/pipeline.yaml'),
    ocr: join(REPO, 'models/ocr/pipeline.yaml'),
    bulky: await writeBulkyPipeline(testModels),
    faulty: await writeFaultyPipeline(testModels),
  };
  manifests = {};
  for (const [name, file] of Object.entries(files)) {
    const m = await loadManifest(file);
    await buildIfNeeded(m);
    await pushPipeline(m, { s3, bucket: settings.bucket });
    manifests[name] = m;
  }

  // The functions as `sst deploy` would create them: names, memory, timeouts, concurrency, environment.
  const repoPlan = planDeployment([manifests.demo, manifests.ocr], { root: REPO });
  const testPlan = planDeployment([manifests.bulky, manifests.faulty], { root: dir });
  const names = componentNames(settings);
  const planned = [
    ...hostedStageFunctions(repoPlan, { planRoot: REPO, names }),
    ...hostedStageFunctions(testPlan, { planRoot: dir, names }),
  ];
  const demoA = planned.find((f) => f.name === 'DemoBranchA')!;
  const demoB = planned.find((f) => f.name === 'DemoBranchB')!;
  const extra: HostedFunction[] = [
    // branch_a once more, but allowed one environment only: as if other gateways were using the rest.
    { ...demoA, name: 'ThrottledBranchA', reservedConcurrency: 1 },
    // branch_b's function, with a handler that never answers within its 1 s timeout.
    { ...demoB, name: 'SleepyBranchB', root: FIXTURES, handler: 'handlers.sleepy', timeoutSeconds: 1 },
  ];
  host = await LambdaHost.start({
    functions: [...planned, ...extra],
    environment: storageEnvironment(settings),
    tmpDir: join(dir, 'lambda'),
    log: (line) => functionLogs.push(line),
  });
  stageFunctions = { ...gatewayStageEnvironment(repoPlan), ...gatewayStageEnvironment(testPlan) };

  gatewayEnv = {
    ...storageEnvironment(settings),
    LAMBDA_TASK_ROOT: REPO,
    ENSEMBLE_BUCKET: settings.bucket,
    ENSEMBLE_RUNS_TABLE: settings.runsTable,
    ENSEMBLE_API_KEY: API_KEY,
    ENSEMBLE_CACHE_DIR: join(dir, 'gateway-cache'),
    ENSEMBLE_MANIFESTS: Object.values(files).join(','),
  };
  lambda = await gateway({ ENSEMBLE_LAMBDA_ENDPOINT: host.url, ...stageFunctions });
  inProcess = await createLambdaGateway({
    env: { ...gatewayEnv, ENSEMBLE_MANIFESTS: [files.demo, files.ocr].join(',') },
    transport: ({ s3: client, settings: s }) => new InProcessTransport(new S3WeightStore({ s3: client, bucket: s.bucket, cacheDir: join(dir, 'in-process-cache') })),
    log: () => undefined, requestLog: () => undefined,
  });
  gateways.push(inProcess);
});

afterAll(async () => {
  for (const g of gateways) await g.close().catch(() => undefined);
  await host?.close();
  s3?.destroy();
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function gateway(env: Record<string, string>): Promise<LambdaGateway> {
  const g = await createLambdaGateway({ env: { ...gatewayEnv, ...env }, log: () => undefined, requestLog: () => undefined });
  gateways.push(g);
  return g;
}

interface Output { name: string; datatype: string; shape: number[]; data: (number | string)[] }
interface Answer { status: number; body: { outputs?: Output[]; error?: string; parameters?: { run_id: string } }; runId: string }

async function infer(g: LambdaGateway, model: string, body: string | Uint8Array, contentType = 'application/json'): Promise<Answer> {
  const res: APIGatewayProxyResult = await g.handler(urlEvent('POST', `/v2/models/${model}/infer`, {
    headers: { ...withKey, 'content-type': contentType }, body, base64: typeof body !== 'string',
  }));
  expect(res.isBase64Encoded).toBe(false);
  return { status: res.statusCode, body: JSON.parse(res.body), runId: String(res.headers?.['x-ensemble-run-id']) };
}

async function record(runId: string): Promise<RunRecord> {
  const res = await lambda.handler(urlEvent('GET', `/v2/runs/${runId}`, { headers: withKey }));
  expect(res.statusCode).toBe(200);
  return JSON.parse(res.body) as RunRecord;
}

const tensor = (x: number[], cols: number) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [x.length / cols, cols], data: x }] });

describe('pipelines over LambdaTransport and the local Lambda host', () => {
  it('demo: the same outputs as in-process, cold start and init time in the run record', async () => {
    const overLambda = await infer(lambda, 'demo', tensor(README_X, 4));
    const local = await infer(inProcess, 'demo', tensor(README_X, 4));
    expect(overLambda.status).toBe(200);
    expect(overLambda.body.outputs).toEqual(local.body.outputs);
    expectClose(overLambda.body.outputs![0].data as number[], demoExpected(README_X));

    const rec = await record(overLambda.runId);
    expect(rec).toMatchObject({ status: 'succeeded', transport: 'lambda' });
    for (const stage of ['branch_a', 'branch_b']) {
      const s = rec.stages.find((x) => x.stage === stage)!;
      expect(s.coldStart).toBe(true);
      expect(s.initMs).toBeGreaterThan(0);
      // The cold start's parts: the environment's start before init, the weights (an empty /tmp: fetched), the session, the first run.
      const split = s.coldStartSplit!;
      expect(split.startMs).toBeGreaterThan(0);
      expect(split.fetchMs).toBeGreaterThan(0);
      expect(split.sessionMs).toBeGreaterThan(0);
      expect(split.firstRunMs).toBeGreaterThanOrEqual(0);
      expect(split.fetchMs + split.hashMs + split.sessionMs).toBeLessThanOrEqual(s.initMs! + 0.05);
      expect(split.firstRunMs!).toBeLessThanOrEqual(s.computeMs + 0.05);
      // Lambda's Init Duration covers the start and the init.
      const report = host.reports(stage === 'branch_a' ? 'DemoBranchA' : 'DemoBranchB')[0];
      expect(split.startMs! + s.initMs!).toBeLessThanOrEqual(report.initMs! + 1);
    }
    const again = await record((await infer(lambda, 'demo', tensor(README_X, 4))).runId);
    expect(again.stages.find((x) => x.stage === 'branch_a')).toMatchObject({ coldStart: false });
    expect(again.stages.find((x) => x.stage === 'branch_a')?.initMs).toBeUndefined();
    // One warm environment served both calls.
    expect(host.reports('DemoBranchA').map((r) => [r.outcome, r.coldStart, r.environment])).toEqual([['ok', true, 1], ['ok', false, 1]]);
  });

  it('ocr: the same lines, confidences and boxes as in-process, images sent as base64 bodies', async () => {
    const specs = ocrSampleSpecs(3, 7);
    let lines = 0;
    let last: { runId: string; imageBytes: number } | undefined;
    const runIds: string[] = [];
    for (const spec of specs) {
      const image = await renderTextImage(spec);
      const type = spec.format === 'jpeg' ? 'image/jpeg' : 'image/png';
      const overLambda = await infer(lambda, 'ocr', new Uint8Array(image), type);
      const local = await infer(inProcess, 'ocr', new Uint8Array(image), type);
      expect(overLambda.status, JSON.stringify(overLambda.body)).toBe(200);
      const byName = (a: Answer) => Object.fromEntries(a.body.outputs!.map((o) => [o.name, o]));
      const [l, p] = [byName(overLambda), byName(local)];
      expect(l.text.data).toEqual(p.text.data);
      expect(l.box).toEqual(p.box);
      expectClose(l.confidence.data as number[], p.confidence.data as number[], 1e-4);
      lines += l.text.data.length;
      last = { runId: overLambda.runId, imageBytes: image.byteLength };
      runIds.push(overLambda.runId);
    }
    expect(lines).toBeGreaterThanOrEqual(specs.length);
    for (const fn of ['OcrDetect', 'OcrClassify', 'OcrRecognize']) {
      expect(host.reports(fn).filter((r) => r.outcome === 'ok').length, fn).toBeGreaterThanOrEqual(specs.length);
    }
    expect(host.reports('OcrDetect')[0]).toMatchObject({ coldStart: true, memoryMb: 1024 });

    // detect-pre ran inside OcrDetect: the encoded image crossed (base64 in JSON), not the float tensor, and no spill.
    const rec = await record(last!.runId);
    expect(rec.stages.map((s) => s.stage)).not.toContain('detect-pre');
    const detect = rec.stages.find((s) => s.stage === 'detect')!;
    expect(detect.hops).toMatchObject({ invokes: 1, spillUpBytes: 0, spillDownBytes: 0 });
    expect(detect.hops!.requestBytes).toBeGreaterThan(last!.imageBytes);
    expect(detect.hops!.requestBytes).toBeLessThan(last!.imageBytes * 1.5 + 4096);
    expect(detect.hops!.responseBytes).toBeGreaterThan(0);
    expect(detect.hops!.functionMs).toBeGreaterThan(0);
    expect(detect.hops!.roundTripMs).toBeGreaterThanOrEqual(detect.hops!.functionMs);
    // Every Invoke the host answered for this run's lines shows up in the record's hops.
    const recognize = rec.stages.find((s) => s.stage === 'recognize')!;
    expect(recognize.hops!.invokes).toBe(recognize.batches);
    // A page's line crops, each of its own size, go to OcrClassify two to an Invoke (its max_size): the function
    // pre-processes each and runs the session on what that makes.
    const classify = await Promise.all(runIds.map(async (id) => (await record(id)).stages.find((s) => s.stage === 'classify')!));
    expect(Math.max(...classify.map((c) => c.items))).toBeGreaterThanOrEqual(2);
    for (const c of classify) {
      expect(c.batches, JSON.stringify(c.batchSizes)).toBe(Math.ceil(c.items / 2));
      expect(c.hops!.invokes).toBe(c.batches);
    }
  });
});

describe("the Lambda path's edges", () => {
  it('passes a 10 MB intermediate tensor through S3 both ways, and removes the objects', async () => {
    const x = [1, 0.5];
    const res = await infer(lambda, 'bulky', tensor(x, 1));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outputs![0]).toMatchObject({ name: 'y', shape: [2, 1], data: x.map((v) => v * BULKY_WIDTH) });

    // widen answered, and narrow was asked, with a reference: the 10 MiB tensor (14 MB as base64 JSON) went through the bucket.
    const widen = host.reports('BulkyWiden').filter((r) => r.outcome === 'ok');
    const narrow = host.reports('BulkyNarrow').filter((r) => r.outcome === 'ok');
    expect(widen).toHaveLength(2);
    expect(narrow).toHaveLength(2);
    for (const r of widen) expect(r.responseBytes).toBeLessThan(1024);
    for (const r of narrow) expect(r.requestBytes).toBeLessThan(1024);

    const left = await s3.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: 'spill/' }));
    expect(left.KeyCount ?? 0).toBe(0);
    const rec = await record(res.runId);
    expect(rec.stages.map((s) => s.stage).sort()).toEqual(['narrow', 'widen']);
    // The record says which hops went through S3 and how much: widen's answers down, narrow's requests up.
    const hops = Object.fromEntries(rec.stages.map((s) => [s.stage, s.hops!]));
    expect(hops.widen).toMatchObject({ invokes: 2, spillUpBytes: 0 });
    expect(hops.widen.spillDownBytes).toBeGreaterThan(2 * BULKY_WIDTH * 4);
    expect(hops.widen.responseBytes).toBeLessThan(2 * 1024);
    expect(hops.narrow).toMatchObject({ invokes: 2, spillDownBytes: 0 });
    expect(hops.narrow.spillUpBytes).toBeGreaterThan(2 * BULKY_WIDTH * 4);
    expect(hops.narrow.requestBytes).toBeLessThan(2 * 1024);
  });

  it('retries throttles: reserved concurrency 1 and 4 chunks at once all succeed', async () => {
    const g = await gateway({ ENSEMBLE_LAMBDA_ENDPOINT: host.url, ...stageFunctions, ENSEMBLE_MANIFESTS: manifests.demo.file, ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A: 'ThrottledBranchA' });
    const x = Array.from({ length: 128 * 4 }, (_, i) => ((i * 37) % 23) / 7 - 1.5);
    const res = await infer(g, 'demo', tensor(x, 4));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expectClose(res.body.outputs![0].data as number[], demoExpected(x));

    // However the batcher cut the 128 rows, every chunk got through, after throttles, on the one environment allowed.
    const a = (await record(res.runId)).stages.find((s) => s.stage === 'branch_a')!;
    expect(a.batchSizes.length).toBeGreaterThanOrEqual(4);
    expect(a.batchSizes.reduce((n, b) => n + b, 0)).toBe(128);
    const reports = host.reports('ThrottledBranchA');
    expect(reports.filter((r) => r.outcome === 'ok')).toHaveLength(a.batchSizes.length);
    expect(reports.filter((r) => r.outcome === 'throttled').length).toBeGreaterThan(0);
    expect(host.environments('ThrottledBranchA')).toHaveLength(1);
  });

  it('a stage that throws: 502 naming the stage and the function\'s message, run record failed', async () => {
    const bad = await infer(lambda, 'faulty', JSON.stringify({ inputs: [{ name: 'i', datatype: 'INT64', shape: [2], data: [1, 7] }] }));
    expect(bad.status).toBe(502);
    expect(bad.body.error).toMatch(/^stage 'lookup' failed: Lambda FaultyLookup failed \(Unhandled\): StageError: .*out of/);
    const rec = await record(bad.runId);
    expect(rec).toMatchObject({ status: 'failed', httpStatus: 502, transport: 'lambda' });
    expect(rec.error).toContain("stage 'lookup' failed");
    expect(rec.stages.find((s) => s.stage === 'lookup')?.error).toContain('Unhandled');

    // A thrown error does not end the environment: the next call is warm and fine.
    const good = await infer(lambda, 'faulty', JSON.stringify({ inputs: [{ name: 'i', datatype: 'INT64', shape: [2], data: [2, 0] }] }));
    expect(good.body.outputs![0].data).toEqual([30, 10]);
    expect(host.reports('FaultyLookup').map((r) => [r.outcome, r.environment])).toEqual([['function-error', 1], ['ok', 1]]);
  });

  it('a stage past its timeout: 504 naming the stage, the environment killed, run record failed', async () => {
    const g = await gateway({ ENSEMBLE_LAMBDA_ENDPOINT: host.url, ...stageFunctions, ENSEMBLE_MANIFESTS: manifests.demo.file, ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B: 'SleepyBranchB' });
    const res = await infer(g, 'demo', tensor(README_X, 4));
    expect(res.status).toBe(504);
    expect(res.body.error).toMatch(/^stage 'branch_b' timed out on Lambda SleepyBranchB: RequestId: \S+ Error: Task timed out after 1\.00 seconds$/);
    const rec = await record(res.runId);
    expect(rec).toMatchObject({ status: 'failed', httpStatus: 504 });
    expect(host.environments('SleepyBranchB').map((e) => e.state)).toEqual(['dead']);
  });
});
