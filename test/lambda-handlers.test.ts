/**
 * The Lambda entry points (functions/gateway.ts, functions/stage.ts) driven
 * with the events Lambda hands them, against s3rver + dynalite and real ONNX
 * Runtime. The gateway's stages run in-process (ENSEMBLE_TRANSPORT=local), and
 * again through LambdaTransport: the real @aws-sdk/client-lambda Invoke, sent
 * to a small local endpoint that runs the stage handlers.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyResult, LambdaEvent } from 'hono/aws-lambda';
import { httpApiEvent, urlEvent } from '../packages/tools/test/lambda-host/events.js';
import { startLocalServices, withLocalServices, type LocalServices } from '../packages/tools/src/local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv } from '../packages/core/src/storage/config.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { ensureRunsTable } from '../packages/core/src/storage/runs-table.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, decodeInferResponse, encodeInferRequest } from '../packages/core/src/tensor/codec.js';
import { decodeStageResponse, encodeStageRequest } from '../packages/core/src/lambda/payload.js';
import { LambdaTransport } from '../packages/core/src/lambda/transport.js';
import { createStageHandler, type StageHandler } from '../packages/core/src/lambda/stage.js';
import { DEADLINE_MARGIN_MS, RUN_FLUSH_MS, createLambdaGateway, type LambdaGateway } from '../packages/core/src/lambda/gateway.js';
import type { Manifest, OnnxStage } from '../packages/core/src/manifest/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import type { Item } from '../packages/core/src/tensor/types.js';
import { OverloadedError, StageError } from '../packages/core/src/errors.js';
import { README_X, demoExpected, expectClose } from './helpers/demo.js';
import { REPO } from './helpers/pipelines.js';
import { emfDocument, emfViolations } from '../packages/core/test/observability/emf-spec.js';
import { DEMO_IN, DEMO_OUT, DEMO_WEIGHTS } from '../models/demo/build.js';

const API_KEY = 'test-key-0123456789';
const DEMO_MANIFEST = 'models/demo/pipeline.yaml';

let dir: string;
let services: LocalServices;
let demo: Manifest;
/** Environment every handler here sees: the emulators, the bucket and table, the key. */
let baseEnv: Record<string, string>;
const savedEnv = { ...process.env };

type GatewayHandler = (event: LambdaEvent) => Promise<APIGatewayProxyResult>;
type StageEntry = (event: unknown) => Promise<unknown>;
let gatewayHandler: GatewayHandler;
let stageHandler: StageEntry;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-lambda-'));
  services = await startLocalServices({ dataDir: join(dir, 'data') });
  const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  try {
    await ensureBucket(s3, settings.bucket);
    await ensureRunsTable(dynamo, settings.runsTable);
    demo = await loadManifest(join(REPO, DEMO_MANIFEST));
    await buildIfNeeded(demo);
    await pushPipeline(demo, { s3, bucket: settings.bucket });
  } finally {
    s3.destroy();
    dynamo.destroy();
  }

  baseEnv = {
    LAMBDA_TASK_ROOT: REPO,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
    ENSEMBLE_S3_ENDPOINT: services.s3Endpoint,
    ENSEMBLE_DYNAMODB_ENDPOINT: services.dynamoEndpoint,
    ENSEMBLE_BUCKET: 'weights',
    ENSEMBLE_RUNS_TABLE: 'runs',
    ENSEMBLE_CACHE_DIR: join(dir, 'cache'),
  };
  // The entry points build themselves at import (Lambda init) from process.env, as on Lambda.
  Object.assign(process.env, baseEnv, {
    ENSEMBLE_API_KEY: API_KEY,
    ENSEMBLE_MANIFESTS: DEMO_MANIFEST,
    ENSEMBLE_TRANSPORT: 'local',
    ENSEMBLE_PIPELINE: 'demo',
    ENSEMBLE_STAGE: 'branch_a',
    ENSEMBLE_MANIFEST: DEMO_MANIFEST,
  });
  vi.resetModules();
  gatewayHandler = (await import('../functions/gateway.js')).handler as GatewayHandler;
  stageHandler = (await import('../functions/stage.js')).handler;
});

afterAll(async () => {
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function json(res: APIGatewayProxyResult): Record<string, unknown> {
  expect(res.isBase64Encoded).toBe(false);
  return JSON.parse(res.body) as Record<string, unknown>;
}

const withKey = { 'x-api-key': API_KEY };

/** relu(x·Wa + ba), row-major, in float64 from the literal weights. */
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
const demoBody = (x: number[]) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [x.length / 4, 4], data: x }] });

describe('functions/gateway.ts', () => {
  it('serves the console: its page without a key (it holds no data), its API only with one', async () => {
    const page = await gatewayHandler(urlEvent('GET', '/console/pipelines/demo'));
    expect(page.statusCode).toBe(200);
    expect(String(page.headers?.['content-type'])).toMatch(/^text\/html/);
    expect(page.body).toContain('<script type="module"');
    const asset = await gatewayHandler(urlEvent('GET', '/console/assets/main.js'));
    expect(asset.statusCode).toBe(200);
    const refused = await gatewayHandler(urlEvent('GET', '/console/api/pipelines/demo'));
    expect(refused.statusCode).toBe(401);
    const view = await gatewayHandler(urlEvent('GET', '/console/api/pipelines/demo', { headers: withKey }));
    expect(view.statusCode).toBe(200);
    expect((json(view) as { stages: { name: string }[] }).stages.map((s) => s.name)).toEqual(['branch_a', 'branch_b', 'average']);
  });

  it('answers the health probes without a key', async () => {
    const live = await gatewayHandler(urlEvent('GET', '/v2/health/live'));
    expect(live.statusCode).toBe(200);
    expect(json(live)).toEqual({ live: true });
    const ready = await gatewayHandler(urlEvent('GET', '/v2/health/ready'));
    expect(ready.statusCode).toBe(200);
    expect(json(ready)).toEqual({ ready: true });
  });

  it('logs one line per request to the console (CloudWatch), with the run id and pipeline, then its metrics line', async () => {
    const logged = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const res = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
        headers: { ...withKey, 'content-type': 'application/json' }, body: demoBody(README_X),
      }));
      expect(res.statusCode).toBe(200);
      const runId = String(res.headers?.['x-ensemble-run-id']);
      expect(logged.mock.calls).toHaveLength(2);
      expect(logged.mock.calls[0][0]).toMatch(new RegExp(`^POST /v2/models/demo/infer 200 \\d+\\.\\dms run=${runId} pipeline=demo$`));
      // Embedded Metric Format: CloudWatch Logs makes metrics of it.
      expect(JSON.parse(String(logged.mock.calls[1][0]))).toMatchObject({ _aws: { CloudWatchMetrics: [{ Namespace: 'Ensemble' }] }, model: 'demo', RequestSuccess: 1 });
    } finally {
      logged.mockRestore();
    }
  });

  it('refuses everything else without the right key, before running or recording anything', async () => {
    const before = json(await gatewayHandler(urlEvent('GET', '/v2/models/demo/runs?limit=1000', { headers: withKey }))).runs as RunRecord[];

    const missing = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { 'content-type': 'application/json' }, body: demoBody(README_X),
    }));
    expect(missing.statusCode).toBe(401);
    expect(json(missing)).toEqual({ error: 'missing API key: send it as x-api-key or Authorization: Bearer' });
    expect(missing.headers?.['x-ensemble-run-id']).toBeUndefined();

    const wrong = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { 'content-type': 'application/json', 'x-api-key': `${API_KEY}x` }, body: demoBody(README_X),
    }));
    expect(wrong.statusCode).toBe(401);
    expect(json(wrong)).toEqual({ error: 'invalid API key' });

    const bearerWrong = await gatewayHandler(urlEvent('GET', '/v2/models/demo', { headers: { authorization: 'Bearer nope' } }));
    expect(bearerWrong.statusCode).toBe(401);
    const metadata = await gatewayHandler(urlEvent('GET', '/v2/models/demo'));
    expect(metadata.statusCode).toBe(401);

    const after = json(await gatewayHandler(urlEvent('GET', '/v2/models/demo/runs?limit=1000', { headers: withKey }))).runs as RunRecord[];
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id));
  });

  it('runs the demo pipeline from a JSON body and leaves a run record', async () => {
    const res = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` }, body: demoBody(README_X),
    }));
    expect(res.statusCode).toBe(200);
    const body = json(res) as { model_name: string; outputs: { name: string; shape: number[]; data: number[] }[]; parameters: { run_id: string } };
    expect(body.model_name).toBe('demo');
    expect(body.outputs.map((o) => [o.name, o.shape])).toEqual([['y', [2, 3]]]);
    expectClose(body.outputs[0].data, demoExpected(README_X));

    // The handler wrote the record before returning: Lambda may freeze the instance right after.
    const runId = body.parameters.run_id;
    expect(res.headers?.['x-ensemble-run-id']).toBe(runId);
    const rec = await gatewayHandler(urlEvent('GET', `/v2/runs/${runId}`, { headers: withKey }));
    expect(rec.statusCode).toBe(200);
    const record = json(rec) as unknown as RunRecord;
    expect(record).toMatchObject({ id: runId, pipeline: 'demo', status: 'succeeded', httpStatus: 200, transport: 'in-process' });
    expect(record.stages.map((s) => s.stage).sort()).toEqual(['average', 'branch_a', 'branch_b']);
  });

  it('takes a base64-encoded binary body and answers binary outputs in base64', async () => {
    const x = [0.25, -3, 1, 8, 2, 2, -1, 0.5, 0, 0, 0, 0];
    const req = encodeInferRequest(
      { x: { datatype: 'FP32', shape: [3, 4], data: Float32Array.from(x) } },
      { binary: true, outputs: [{ name: 'y', binary: true }] },
    );
    const res = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { ...withKey, 'content-type': 'application/octet-stream', [INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]: String(req.headerLength) },
      body: req.body,
      base64: true,
    }));
    expect(res.statusCode).toBe(200);
    expect(res.isBase64Encoded).toBe(true);
    const headerLength = Number(res.headers?.[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]);
    const { tensors } = decodeInferResponse(new Uint8Array(Buffer.from(res.body, 'base64')), headerLength);
    expect(tensors.y.shape).toEqual([3, 3]);
    expectClose(tensors.y.data as Float32Array, demoExpected(x));
  });

  it('runs behind an API Gateway HTTP API too (payload format 2.0, base64 body, cookies)', async () => {
    const res = await gatewayHandler(httpApiEvent('POST', '/v2/models/demo/infer', {
      headers: { ...withKey, 'content-type': 'application/json' }, body: demoBody(README_X), base64: true, cookies: ['session=abc'],
    }));
    expect(res.statusCode).toBe(200);
    const body = json(res) as { outputs: { data: number[] }[] };
    expectClose(body.outputs[0].data, demoExpected(README_X));
    const live = await gatewayHandler(httpApiEvent('GET', '/v2/health/live'));
    expect(json(live)).toEqual({ live: true });
    const refused = await gatewayHandler(httpApiEvent('GET', '/v2/models/demo'));
    expect(refused.statusCode).toBe(401);
  });

  it('answers bad input with 400 and records the failure', async () => {
    const res = await gatewayHandler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { ...withKey, 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] }),
    }));
    expect(res.statusCode).toBe(400);
    const runId = res.headers?.['x-ensemble-run-id'] as string;
    const rec = json(await gatewayHandler(urlEvent('GET', `/v2/runs/${runId}`, { headers: withKey }))) as unknown as RunRecord;
    expect(rec).toMatchObject({ status: 'failed', httpStatus: 400 });
  });
});

describe('functions/stage.ts', () => {
  const call = async (payload: unknown) => stageHandler(JSON.parse(JSON.stringify(payload)));
  const rows = (x: number[]): Item[] => {
    const out: Item[] = [];
    for (let i = 0; i < x.length; i += 4) out.push({ input: { datatype: 'FP32', shape: [4], data: Float32Array.from(x.slice(i, i + 4)) } });
    return out;
  };

  it('fetched its weights into the cache during init and runs a batch per call', async () => {
    const stage = demo.stages.find((s) => s.name === 'branch_a') as OnnxStage;
    expect(existsSync(join(dir, 'cache', 'sha256', stage.weights.sha256))).toBe(true);

    const first = decodeStageResponse(await call(encodeStageRequest('demo', 'branch_a', rows(README_X))), 'branch_a');
    expect(first.coldStart).toBe(true);
    expect(first.initMs).toBeGreaterThan(0);
    expect(first.outcomes).toHaveLength(2);
    const y = first.outcomes.map((o) => {
      if (!o.ok) throw new Error(o.error);
      expect(o.items).toHaveLength(1);
      expect(o.items[0].output.shape).toEqual([3]);
      return Array.from(o.items[0].output.data as Float32Array);
    });
    expectClose(y.flat(), branchA(README_X));

    const second = decodeStageResponse(await call(encodeStageRequest('demo', 'branch_a', rows(README_X.slice(0, 4)))), 'branch_a');
    expect(second.coldStart).toBe(false);
    expect(second.initMs).toBeUndefined();
    const o = second.outcomes[0];
    if (!o.ok) throw new Error(o.error);
    expect(Array.from(o.items[0].output.data as Float32Array)).toEqual(y[0]);
  });

  it('answers a payload for another stage, or a malformed one, with a 400 it can explain', async () => {
    const other = await call(encodeStageRequest('demo', 'branch_b', rows(README_X)));
    expect(other).toEqual({ v: 1, ok: false, code: 'invalid_input', error: "this function serves stage 'branch_a' of 'demo', not 'branch_b' of 'demo'" });
    const junk = await call({ hello: 'world' });
    expect(junk).toMatchObject({ v: 1, ok: false, code: 'invalid_input' });
    expect(() => decodeStageResponse(junk, 'branch_a')).toThrow(StageError);
  });

  it('writes a metrics line for a batch that fails whole (every item failed) and for a payload it refuses', async () => {
    const lines: string[] = [];
    const handler = await createStageHandler({ ...baseEnv, ENSEMBLE_PIPELINE: 'demo', ENSEMBLE_STAGE: 'branch_a', ENSEMBLE_MANIFEST: DEMO_MANIFEST }, { metricsLog: (l) => lines.push(l) });
    // Five values where the model takes four: ONNX Runtime refuses the batch, and the handler throws (a function error).
    const wrong: Item[] = [0, 1].map(() => ({ input: { datatype: 'FP32', shape: [5], data: new Float32Array(5) } }));
    await expect(handler(JSON.parse(JSON.stringify(encodeStageRequest('demo', 'branch_a', wrong))))).rejects.toThrow();
    expect(lines).toHaveLength(1);
    expect(emfViolations(lines[0])).toEqual([]);
    expect(emfDocument(lines[0]).members).toMatchObject({ model: 'demo', stage: 'branch_a', ExecCount: 1, FailedItems: 2, InferenceCount: 0 });
    await handler(JSON.parse(JSON.stringify(encodeStageRequest('demo', 'branch_b', rows(README_X)))));
    expect(lines).toHaveLength(2);
    expect(emfViolations(lines[1])).toEqual([]);
    expect(emfDocument(lines[1]).members).toMatchObject({ model: 'demo', stage: 'branch_a', RejectedInvocations: 1 });
  });

  it('reports a failed init on every call instead of crashing', async () => {
    const broken = await createStageHandler({ ...baseEnv, ENSEMBLE_PIPELINE: 'demo', ENSEMBLE_STAGE: 'average', ENSEMBLE_MANIFEST: DEMO_MANIFEST });
    const answer = await broken(encodeStageRequest('demo', 'average', []));
    expect(answer).toMatchObject({ ok: false, code: 'not_ready' });
    expect((answer as { error: string }).error).toContain("stage 'average' of 'demo' is a function stage");
  });
});

/**
 * The Invoke API of Lambda, just enough for the SDK's InvokeCommand: POST
 * /2015-03-31/functions/<name>/invocations runs that function's handler on the
 * JSON body. `throttle` answers like a function at its reserved concurrency;
 * `flaky` fails with Lambda's 500 ServiceException twice, then runs branch_a.
 */
async function invokeEndpoint(functions: Record<string, StageHandler | 'crash' | 'throttle'>): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  let flakyFailures = 0;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations(?:\?Qualifier=(.+))?$/.exec(req.url ?? '');
    const name = m ? decodeURIComponent(m[1]) : '';
    calls.push(m?.[2] ? `${name}:${m[2]}` : name);
    const fn = name === 'flaky' ? functions['ensemble-prod-DemoBranchA'] : functions[name];
    if (name === 'flaky' && flakyFailures < 2) {
      flakyFailures++;
      res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceException' });
      res.end(JSON.stringify({ Type: 'Service', message: 'The AWS Lambda service encountered an internal error.' }));
    } else if (!fn) {
      res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' });
      res.end(JSON.stringify({ Type: 'User', message: `Function not found: ${name}` }));
    } else if (fn === 'throttle') {
      res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException' });
      res.end(JSON.stringify({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }));
    } else if (fn === 'crash') {
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' });
      res.end(JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: 'RequestId: 1 Error: Runtime exited with error: signal: killed' }));
    } else {
      const out = await fn(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' });
      res.end(JSON.stringify(out));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, calls, close: () => new Promise((r) => server.close(() => r())) };
}

describe('the gateway over LambdaTransport', () => {
  let endpoint: Awaited<ReturnType<typeof invokeEndpoint>>;
  let gateway: LambdaGateway;

  beforeAll(async () => {
    const stage = (name: string) => createStageHandler({ ...baseEnv, ENSEMBLE_PIPELINE: 'demo', ENSEMBLE_STAGE: name, ENSEMBLE_MANIFEST: DEMO_MANIFEST });
    endpoint = await invokeEndpoint({
      'ensemble-prod-DemoBranchA': await stage('branch_a'),
      'ensemble-prod-DemoBranchB': await stage('branch_b'),
      crash: 'crash',
      throttle: 'throttle',
    });
    gateway = await createLambdaGateway({
      env: {
        ...baseEnv,
        ENSEMBLE_API_KEY: API_KEY,
        ENSEMBLE_MANIFESTS: DEMO_MANIFEST,
        ENSEMBLE_LAMBDA_ENDPOINT: endpoint.url,
        ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A: 'ensemble-prod-DemoBranchA',
        ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B: 'ensemble-prod-DemoBranchB',
        ENSEMBLE_STAGE_QUALIFIER_DEMO_BRANCH_B: '7',
      },
      log: () => undefined, requestLog: () => undefined,
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await endpoint?.close();
  });

  it('invokes one function per ONNX stage (by version where provisioned) and records transport lambda', async () => {
    const res = await gateway.handler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { ...withKey, 'content-type': 'application/json' }, body: demoBody(README_X),
    }));
    expect(res.statusCode).toBe(200);
    const body = json(res) as { outputs: { data: number[] }[]; parameters: { run_id: string } };
    expectClose(body.outputs[0].data, demoExpected(README_X));
    expect(endpoint.calls.sort()).toEqual(['ensemble-prod-DemoBranchA', 'ensemble-prod-DemoBranchB:7']);

    const rec = json(await gateway.handler(urlEvent('GET', `/v2/runs/${body.parameters.run_id}`, { headers: withKey }))) as unknown as RunRecord;
    expect(rec.transport).toBe('lambda');
    const a = rec.stages.find((s) => s.stage === 'branch_a');
    expect(a).toMatchObject({ coldStart: true, items: 2 });
    expect(a?.initMs).toBeGreaterThan(0);
  });

  it('counts statistics per gateway instance, for the pipeline and each stage function, behind the API key', async () => {
    const stats = async (model: string) => (json(await gateway.handler(urlEvent('GET', `/v2/models/${model}/stats`, { headers: withKey }))) as { model_stats: { inference_count: number; execution_count: number }[] }).model_stats[0];
    const [pipeline, stage] = [await stats('demo'), await stats('demo.branch_a')];
    const res = await gateway.handler(urlEvent('POST', '/v2/models/demo/infer', { headers: { ...withKey, 'content-type': 'application/json' }, body: demoBody(README_X) }));
    expect(res.statusCode).toBe(200);
    expect((await stats('demo')).inference_count - pipeline.inference_count).toBe(2);
    expect((await stats('demo.branch_a')).inference_count - stage.inference_count).toBe(2);
    expect((await gateway.handler(urlEvent('GET', '/v2/models/demo.branch_a/stats'))).statusCode).toBe(401);
    const config = json(await gateway.handler(urlEvent('GET', '/v2/models/demo.branch_a/config', { headers: withKey })));
    expect(config).toMatchObject({ platform: 'onnxruntime_onnx', max_batch_size: 32, input: [{ name: 'input', dims: [4] }] });
  });

  it('ends a request before the Lambda invocation deadline, with a 504 and its run record', async () => {
    // An invocation with no time left beyond the record flush and the answer: the request gets 1 ms,
    // less than one Invoke round trip, so it must time out rather than be killed by Lambda.
    const context = { getRemainingTimeInMillis: () => RUN_FLUSH_MS + DEADLINE_MARGIN_MS } as unknown as Parameters<LambdaGateway['handler']>[1];
    const res = await gateway.handler(urlEvent('POST', '/v2/models/demo/infer', {
      headers: { ...withKey, 'content-type': 'application/json' }, body: demoBody(README_X),
    }), context);
    expect(res.statusCode).toBe(504);
    expect((json(res) as { error: string }).error).toMatch(/^request timed out after 1 ms/);
    const runId = (res.headers as Record<string, string>)['x-ensemble-run-id'];
    const rec = json(await gateway.handler(urlEvent('GET', `/v2/runs/${runId}`, { headers: withKey }))) as unknown as RunRecord;
    expect(rec).toMatchObject({ status: 'failed', httpStatus: 504 });
  });

  it('turns a crashed function into a stage error and a throttled one into 429', async () => {
    const transport = new LambdaTransport({
      env: { ...baseEnv, ENSEMBLE_LAMBDA_ENDPOINT: endpoint.url, ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A: 'crash', ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B: 'throttle' },
    });
    try {
      // Throttles are retried until the stage's timeout: keep it short here.
      await transport.load({ ...demo, stages: demo.stages.map((s) => ({ ...s, timeoutMs: 400 })) });
      const before = endpoint.calls.filter((c) => c === 'throttle').length;
      const items: Item[] = [{ input: { datatype: 'FP32', shape: [4], data: new Float32Array(4) } }];
      const crashed = await transport.invoke('demo', 'branch_a', items).catch((e: unknown) => e);
      expect(crashed).toBeInstanceOf(StageError);
      expect((crashed as StageError).code).toBe('bad_gateway');
      expect((crashed as StageError).message).toContain('Lambda crash failed (Unhandled): Runtime.ExitError: RequestId: 1 Error: Runtime exited');
      const throttled = await transport.invoke('demo', 'branch_b', items).catch((e: unknown) => e);
      expect(throttled).toBeInstanceOf(OverloadedError);
      expect((throttled as OverloadedError).code).toBe('overloaded');
      expect((throttled as OverloadedError).message).toContain("stage 'branch_b': Lambda throttle is at its concurrency limit");
      // Retried with backoff before giving up, not refused on the first 429.
      expect(endpoint.calls.filter((c) => c === 'throttle').length - before).toBeGreaterThan(2);
    } finally {
      await transport.close();
    }
  });

  it('retries a 5xx from the Lambda service and then succeeds', async () => {
    const transport = new LambdaTransport({ env: { ...baseEnv, ENSEMBLE_LAMBDA_ENDPOINT: endpoint.url, ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A: 'flaky', ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_B: 'throttle' } });
    try {
      await transport.load(demo);
      const items: Item[] = [{ input: { datatype: 'FP32', shape: [4], data: Float32Array.from(README_X.slice(0, 4)) } }];
      const result = await transport.invoke('demo', 'branch_a', items);
      const o = result.outcomes[0];
      if (!o.ok) throw new Error(o.error);
      expectClose(Array.from(o.items[0].output.data as Float32Array), branchA(README_X.slice(0, 4)));
      expect(endpoint.calls.filter((c) => c === 'flaky')).toHaveLength(3);
    } finally {
      await transport.close();
    }
  });

  it('will not load a pipeline whose stage has no function configured', async () => {
    const transport = new LambdaTransport({ env: { ...baseEnv, ENSEMBLE_LAMBDA_ENDPOINT: endpoint.url } });
    await expect(transport.load(demo)).rejects.toThrow('ENSEMBLE_STAGE_FUNCTION_DEMO_BRANCH_A is not set');
    await transport.close();
  });
});
