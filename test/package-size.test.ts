/**
 * `npm run package` output, as `sst deploy` uploads it: the stage function is
 * under Lambda's 250 MB unzipped limit with only Linux x64 binaries of ONNX
 * Runtime, and every function, copied into an empty folder (no node_modules
 * above it, no TypeScript loader), starts in the local Lambda host and
 * answers: a stage runs its model; the packaged gateway runs the demo and OCR
 * pipelines (function stages and the OCR dictionary inside its bundle, sharp
 * for Linux beside it) by invoking the packaged stage functions.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { APIGatewayProxyResult } from 'hono/aws-lambda';
import { startLocalServices, withLocalServices, type LocalServices } from '../packages/tools/src/local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv, type AwsSettings } from '../packages/core/src/storage/config.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { ensureRunsTable } from '../packages/core/src/storage/runs-table.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { planDeployment } from '../packages/tools/src/deploy/plan.js';
import type { DeploymentPlan } from '../packages/tools/src/deploy/types.js';
import { packageFunctions, treeSize } from '../packages/tools/src/package/package.js';
import { findPackage } from '../packages/tools/src/package/node-modules.js';
import { LAMBDA_UNZIPPED_LIMIT_BYTES } from '../packages/tools/src/package/settings.js';
import type { PackagedFunction } from '../packages/tools/src/package/types.js';
import { LambdaHost } from '../packages/tools/src/lambda-host/host.js';
import {
  componentNames, gatewayStageEnvironment, hostedStageFunctions, storageEnvironment,
} from '../packages/tools/src/lambda-host/from-plan.js';
import { decodeStageResponse, encodeStageRequest } from '../packages/core/src/lambda/payload.js';
import { readStages } from '../packages/core/src/lambda/stage-file.js';
import type { Item } from '../packages/core/src/tensor/types.js';
import { urlEvent } from '../packages/tools/test/lambda-host/events.js';
import { DEMO_IN, DEMO_OUT, DEMO_WEIGHTS } from '../models/demo/build.js';
import { demoExpected, expectClose, README_X } from './helpers/demo.js';
import { editDistance, renderTextImage } from '../packages/tools/src/bench/render.js';
import { REPO } from './helpers/pipelines.js';

let dir: string;
let services: LocalServices;
let settings: AwsSettings;
let plan: DeploymentPlan;
let packaged: Map<string, PackagedFunction>;
/** Each packaged function copied into a folder of its own with nothing around it. */
let copies: Map<string, string>;
let host: LambdaHost;
let client: LambdaClient;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-package-'));
  services = await startLocalServices({ dataDir: join(dir, 'data') });
  settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  await ensureBucket(s3, settings.bucket);
  await ensureRunsTable(dynamo, settings.runsTable);
  const manifests = [await loadManifest(join(REPO, 'models/demo/pipeline.yaml')), await loadManifest(join(REPO, 'models/ocr/pipeline.yaml'))];
  for (const m of manifests) {
    await buildIfNeeded(m);
    await pushPipeline(m, { s3, bucket: settings.bucket });
  }
  s3.destroy();
  dynamo.destroy();

  plan = planDeployment(manifests, { root: REPO });
  const out = await packageFunctions(plan, { root: REPO, outDir: join(dir, 'dist') });
  packaged = new Map(out.map((p) => [p.name, p]));

  copies = new Map();
  for (const p of out) {
    const to = join(dir, 'empty', p.name);
    await cp(p.dir, to, { recursive: true });
    copies.set(p.name, to);
  }

  const names = componentNames(settings);
  host = await LambdaHost.start({
    functions: hostedStageFunctions(plan, { planRoot: REPO, names, packaged: join(dir, 'empty') }),
    environment: storageEnvironment(settings),
    tmpDir: join(dir, 'lambda'),
    log: (line) => logs.push(line),
  });
  // The gateway as deployed, calling its stages through this same host as on AWS it calls Lambda.
  const g = plan.gateway;
  host.register({
    name: g.name, handler: g.handler, root: copies.get(g.name)!, memoryMb: g.memoryMb, timeoutSeconds: g.timeoutSeconds,
    environment: {
      ...g.environment,
      ...Object.fromEntries(Object.entries(g.nameEnv).map(([k, v]) => [k, names[v] ?? v])),
      ...gatewayStageEnvironment(plan),
      ENSEMBLE_API_KEY: 'package-test',
      ENSEMBLE_LAMBDA_ENDPOINT: host.url,
    },
  });
  client = new LambdaClient({ region: 'us-east-1', endpoint: host.url, maxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
});

afterAll(async () => {
  client?.destroy();
  await host?.close();
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function invoke(name: string, event: unknown): Promise<{ error?: string; payload: any }> {
  const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(event)) }));
  const payload = JSON.parse(Buffer.from(out.Payload!).toString('utf8'));
  return { error: out.FunctionError, payload };
}

/** relu(x·Wa + ba) per row. */
function branchA(x: number[]): number[] {
  const { w, b } = DEMO_WEIGHTS.branch_a;
  const y: number[] = [];
  for (let r = 0; r < x.length / DEMO_IN; r++) {
    for (let c = 0; c < DEMO_OUT; c++) {
      let z = b[c];
      for (let k = 0; k < DEMO_IN; k++) z += x[r * DEMO_IN + k] * w[k][c];
      y.push(Math.max(0, z));
    }
  }
  return y;
}

describe('the stage function package', () => {
  it('bundles the engine only: no emulator, bundler, benchmark or other tooling in any function', () => {
    for (const p of packaged.values()) {
      expect(p.sources.some((s) => s.startsWith('packages/core/src/')), p.name).toBe(true);
      const tooling = p.sources.filter((s) => s.startsWith('packages/tools/')
        || /node_modules\/(s3rver|dynalite|esbuild|@gutenye\/ocr-node|vitest|autocannon)\//.test(s) || s.startsWith('test/'));
      expect(tooling, p.name).toEqual([]);
    }
  });

  it('is under 250 MB unzipped, with only the Linux x64 build of ONNX Runtime', async () => {
    const stage = packaged.get('DemoBranchA')!;
    const { bytes } = await treeSize(copies.get('DemoBranchA')!);
    expect(bytes).toBe(stage.bytes);
    expect(bytes).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
    const ort = join(stage.dir, 'node_modules/onnxruntime-node/bin/napi-v6');
    expect(readdirSync(ort)).toEqual(['linux']);
    expect(readdirSync(join(ort, 'linux'))).toEqual(['x64']);
    expect(existsSync(join(stage.dir, 'functions/stage.mjs'))).toBe(true);
    expect(existsSync(join(stage.dir, 'models/demo/pipeline.yaml'))).toBe(true);
    // Every stage function without co-located stages is the same code with its own manifest: the same size within a few KB.
    for (const s of plan.stages.filter((x) => x.colocated.length === 0)) expect(Math.abs(packaged.get(s.name)!.bytes - bytes)).toBeLessThan(64 * 1024);
  });

  it('carries the stage modules placed with its model, and sharp for Linux x64 when they run there (OCR detect)', () => {
    const detect = packaged.get('OcrDetect')!;
    expect(detect.sources).toEqual(expect.arrayContaining(['models/ocr/stages/decode.ts', 'models/ocr/stages/detect-pre.ts']));
    expect(detect.sources).not.toContain('models/ocr/stages/crop.ts');
    expect(existsSync(join(detect.dir, 'node_modules/@img/sharp-linux-x64'))).toBe(true);
    // sharp's JavaScript and the packages it requires load as one file (package/prebundle.ts).
    expect(JSON.parse(readFileSync(join(detect.dir, 'node_modules/sharp/package.json'), 'utf8')).exports['.'].import.default).toBe('./dist/index.bundle.mjs');
    expect(detect.bytes).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
    expect(packaged.get('OcrRecognize')!.sources).toContain('models/ocr/stages/rec-pre.ts');
    // A stage function with nothing placed beside its model has no image library.
    expect(existsSync(join(packaged.get('DemoBranchA')!.dir, 'node_modules/sharp'))).toBe(false);
  });

  it('copied into an empty folder, loads and runs its model through its handler', async () => {
    const copy = copies.get('DemoBranchA')!;
    // Nothing above the copy to fall back on: what it loads, it carries.
    expect(findPackage('onnxruntime-node', path.dirname(copy))).toBeUndefined();
    const items: Item[] = [];
    for (let i = 0; i < README_X.length; i += 4) items.push({ input: { datatype: 'FP32', shape: [4], data: Float32Array.from(README_X.slice(i, i + 4)) } });

    const out = await invoke('DemoBranchA', encodeStageRequest('demo', 'branch_a', items));
    expect(out.error).toBeUndefined();
    const result = decodeStageResponse(out.payload, 'branch_a');
    expect(result.coldStart).toBe(true);
    expect(result.initMs).toBeGreaterThan(0);
    const y = result.outcomes.flatMap((o) => {
      if (!o.ok) throw new Error(o.error);
      return Array.from(o.items[0].output.data as Float32Array);
    });
    expectClose(y, branchA(README_X));
    const [report] = host.reports('DemoBranchA');
    expect(report).toMatchObject({ outcome: 'ok', coldStart: true, memoryMb: 512 });
    // Its cold start, split: the environment's start, then init (weights fetched into an empty /tmp, session), then the first run.
    const split = result.coldStartSplit!;
    expect(split.startMs).toBeGreaterThan(0);
    expect(split.fetchMs).toBeGreaterThan(0);
    expect(split.firstRunMs).toBe(result.computeMs);
    expect(split.fetchMs + split.hashMs + split.sessionMs).toBeLessThanOrEqual(result.initMs!);
    expect(split.startMs! + result.initMs!).toBeLessThanOrEqual(report.initMs!);
    expect(split.firstRunMs!).toBeLessThanOrEqual(report.durationMs);
  });

  it('carries its stages beside the manifest, made from that very manifest, so init reads no YAML', async () => {
    const manifest = join(copies.get('DemoBranchA')!, 'models/demo/pipeline.yaml');
    const got = await readStages(manifest);
    expect(got.from).toBe('stages-file');
    const demo = await loadManifest(join(REPO, 'models/demo/pipeline.yaml'));
    // Everything but weights.source (the build machine's path to its copy of the weights; a function fetches from the bucket).
    const withoutSource = (m: unknown) => JSON.parse(JSON.stringify(m, (k, v: unknown) => (k === 'source' ? undefined : v)));
    expect(withoutSource(got.manifest.stages.find((s) => s.name === 'branch_a'))).toEqual(withoutSource(demo.stages.find((s) => s.name === 'branch_a')));
    expect(got.manifest.name).toBe('demo');
  });
});

describe('the gateway package', () => {
  const call = async (method: string, target: string, opts: Parameters<typeof urlEvent>[2] = {}) => {
    const out = await invoke('EnsembleGateway', urlEvent(method, target, { ...opts, headers: { 'x-api-key': 'package-test', ...opts.headers } }));
    expect(out.error, JSON.stringify(out.payload)).toBeUndefined();
    return out.payload as APIGatewayProxyResult;
  };

  it('carries sharp for Linux x64 and no ONNX Runtime', () => {
    const g = packaged.get('EnsembleGateway')!;
    expect(existsSync(join(g.dir, 'node_modules/@img/sharp-linux-x64'))).toBe(true);
    expect(existsSync(join(g.dir, 'node_modules/onnxruntime-node'))).toBe(false);
    expect(g.bytes).toBeLessThan(LAMBDA_UNZIPPED_LIMIT_BYTES);
  });

  it('runs the demo (a bundled function stage) by invoking the packaged stage functions', async () => {
    const res = await call('POST', '/v2/models/demo/infer', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: README_X }] }),
    });
    expect(res.statusCode, res.body).toBe(200);
    expectClose(JSON.parse(res.body).outputs[0].data, demoExpected(README_X));
  });

  it('runs OCR on an image: sharp, nine function stages and the dictionary all inside the package', async () => {
    const text = 'Invoice total 4821';
    const image = await renderTextImage({ lines: [text], size: 40 });
    const res = await call('POST', '/v2/models/ocr/infer', { headers: { 'content-type': 'image/png' }, body: image, base64: true });
    expect(res.statusCode, res.body).toBe(200);
    const outputs = Object.fromEntries((JSON.parse(res.body).outputs as { name: string; data: unknown[] }[]).map((o) => [o.name, o.data]));
    expect(outputs.text).toHaveLength(1);
    expect(editDistance(String(outputs.text[0]), text)).toBeLessThanOrEqual(1);
    for (const fn of ['OcrDetect', 'OcrClassify', 'OcrRecognize']) expect(host.reports(fn).some((r) => r.outcome === 'ok'), fn).toBe(true);
    // The packaged detector decoded and pre-processed the image itself: the PNG (as base64 JSON) went up, no float tensor.
    const detect = host.reports('OcrDetect').find((r) => r.outcome === 'ok')!;
    expect(detect.requestBytes).toBeLessThan(image.byteLength * 1.5 + 4096);
  });
});
