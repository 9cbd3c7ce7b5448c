/**
 * CloudWatch metrics on Lambda: the deployed gateway (createLambdaGateway,
 * function URL events) runs the demo over LambdaTransport against the local
 * Lambda host running the real stage handler (functions/stage.ts) as the
 * deployment plan describes it. Both log Embedded Metric Format lines; they
 * are captured (the gateway's through its log option, the stage functions'
 * from their processes' stdout) and checked against the EMF specification.
 */
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalServices, withLocalServices, type LocalServices } from '../packages/tools/src/local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv } from '../packages/core/src/storage/config.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { ensureRunsTable } from '../packages/core/src/storage/runs-table.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { planDeployment } from '../packages/tools/src/deploy/plan.js';
import { createLambdaGateway, type LambdaGateway } from '../packages/core/src/lambda/gateway.js';
import { LambdaHost } from '../packages/tools/src/lambda-host/host.js';
import { componentNames, gatewayStageEnvironment, hostedStageFunctions, storageEnvironment } from '../packages/tools/src/lambda-host/from-plan.js';
import { urlEvent } from '../packages/tools/test/lambda-host/events.js';
import { emfDocument, emfViolations } from '../packages/core/test/observability/emf-spec.js';
import { README_X } from './helpers/demo.js';
import { REPO } from './helpers/pipelines.js';

const API_KEY = 'lambda-metrics-key';
const NAMESPACE = 'EnsembleTest';

let dir: string;
let services: LocalServices;
let host: LambdaHost;
let gateway: LambdaGateway;
const gatewayLines: string[] = [];
/** Every line the stage functions' processes printed, `<function>[<environment>] <line>`. */
const functionLogs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ensemble-lambda-metrics-'));
  services = await startLocalServices({ dataDir: join(dir, 'data') });
  const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
  const s3 = makeS3Client(settings);
  const dynamo = makeDynamoClient(settings);
  await ensureBucket(s3, settings.bucket);
  await ensureRunsTable(dynamo, settings.runsTable);
  dynamo.destroy();
  const file = join(REPO, 'models/demo/pipeline.yaml');
  const manifest = await loadManifest(file);
  await buildIfNeeded(manifest);
  await pushPipeline(manifest, { s3, bucket: settings.bucket });
  s3.destroy();

  const plan = planDeployment([manifest], { root: REPO });
  const metricsEnv = { ENSEMBLE_METRICS_NAMESPACE: NAMESPACE };
  host = await LambdaHost.start({
    functions: hostedStageFunctions(plan, { planRoot: REPO, names: componentNames(settings) }),
    environment: { ...storageEnvironment(settings), ...metricsEnv },
    tmpDir: join(dir, 'lambda'),
    log: (line) => functionLogs.push(line),
  });
  gateway = await createLambdaGateway({
    env: {
      ...storageEnvironment(settings), ...gatewayStageEnvironment(plan), ...metricsEnv,
      LAMBDA_TASK_ROOT: REPO, ENSEMBLE_BUCKET: settings.bucket, ENSEMBLE_RUNS_TABLE: settings.runsTable,
      ENSEMBLE_API_KEY: API_KEY, ENSEMBLE_CACHE_DIR: join(dir, 'gateway-cache'), ENSEMBLE_MANIFESTS: file,
      ENSEMBLE_LAMBDA_ENDPOINT: host.url,
    },
    log: () => undefined, requestLog: () => undefined, metricsLog: (line) => gatewayLines.push(line),
  });
});

afterAll(async () => {
  await gateway?.close().catch(() => undefined);
  await host?.close();
  await services?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const infer = (body: unknown) => gateway.handler(urlEvent('POST', '/v2/models/demo/infer', {
  headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify(body),
}));
const demoBody = (rows: number) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: README_X.slice(0, 4 * rows) }] });

/** The EMF lines a function printed: its log lines that are JSON objects with `_aws`. */
function emfLinesOf(fn: string): string[] {
  return functionLogs
    .filter((l) => l.startsWith(`${fn}[`))
    .map((l) => l.slice(l.indexOf('] ') + 2))
    .filter((l) => l.startsWith('{') && l.includes('"_aws"'));
}

describe('CloudWatch Embedded Metric Format on Lambda', () => {
  it('the gateway logs one valid line per invocation, per pipeline, with its counts and durations', async () => {
    expect((await infer(demoBody(2))).statusCode).toBe(200);
    expect(gatewayLines).toHaveLength(1);
    expect((await infer({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] })).statusCode).toBe(400);
    expect(gatewayLines).toHaveLength(2);
    for (const line of gatewayLines) expect(emfViolations(line), line).toEqual([]);

    const ok = emfDocument(gatewayLines[0]);
    expect(ok.directive).toMatchObject({ Namespace: NAMESPACE, Dimensions: [['model']] });
    expect(ok.members).toMatchObject({ model: 'demo', RequestSuccess: 1, RequestFailure: 0, InferenceCount: 2 });
    expect(ok.members.RequestDuration).toBeGreaterThan(0);
    // The two ONNX stages and the function stage each ran at least one batch for it.
    expect(ok.members.StageCalls).toBeGreaterThanOrEqual(3);
    expect(ok.directive.Metrics).toContainEqual({ Name: 'RequestDuration', Unit: 'Milliseconds' });
    const bad = emfDocument(gatewayLines[1]);
    expect(bad.members).toMatchObject({ model: 'demo', RequestSuccess: 0, RequestFailure: 1, RequestFailureOther: 1 });

    // A request of the health route is an invocation with nothing to report: no line.
    const health = await gateway.handler(urlEvent('GET', '/v2/health/ready'));
    expect(health.statusCode).toBe(200);
    expect(gatewayLines).toHaveLength(2);
  });

  it('each stage function logs one valid line per invocation, with its batch, compute and cold start', async () => {
    for (const fn of ['DemoBranchA', 'DemoBranchB']) {
      const reports = host.reports(fn).filter((r) => r.outcome === 'ok');
      expect(reports.length, fn).toBeGreaterThanOrEqual(1);
      // The log lines of an invocation are read from the process as it prints them: wait for them to arrive.
      for (let i = 0; i < 100 && emfLinesOf(fn).length < reports.length; i++) await new Promise((r) => setTimeout(r, 20));
      const lines = emfLinesOf(fn);
      expect(lines, fn).toHaveLength(reports.length);
      for (const line of lines) expect(emfViolations(line), line).toEqual([]);
      const first = emfDocument(lines[0]);
      expect(first.directive).toMatchObject({ Namespace: NAMESPACE, Dimensions: [['model', 'stage']] });
      expect(first.members).toMatchObject({ model: 'demo', ExecCount: 1, ColdStart: 1, FailedItems: 0 });
      expect(first.members.stage).toBe(fn === 'DemoBranchA' ? 'branch_a' : 'branch_b');
      expect(first.members.BatchSize).toBe(first.members.InferenceCount);
      expect(first.members.InitDuration).toBeGreaterThan(0);
      expect(first.directive.Metrics).toContainEqual({ Name: 'ComputeInferDuration', Unit: 'Milliseconds' });
    }
  });
});
