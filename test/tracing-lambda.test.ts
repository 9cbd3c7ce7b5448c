/**
 * Trace context on the Lambda path: the stage payload carries the batch
 * span's traceparent through a real Invoke (the local Lambda host, the real
 * Lambda client), the stage handler continues it with its own span, and the
 * X-Ray trace header joins a request or a stage call to the X-Ray trace when
 * no traceparent is present. Plus the header formats themselves.
 */
import path, { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, TraceFlags } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { LambdaHost } from '../packages/tools/src/lambda-host/host.js';
import { LambdaTransport } from '../packages/core/src/lambda/transport.js';
import { createStageHandler } from '../packages/core/src/lambda/stage.js';
import { createLambdaGateway, type LambdaGateway } from '../packages/core/src/lambda/gateway.js';
import { decodeStageRequest, decodeStageResponse, encodeStageRequest } from '../packages/core/src/lambda/payload.js';
import { InProcessTransport } from '../packages/core/src/transport/in-process.js';
import { S3WeightStore } from '../packages/core/src/storage/s3-weights.js';
import { startLocalServices, withLocalServices, type LocalServices } from '../packages/tools/src/local/local-services.js';
import { makeDynamoClient, makeS3Client, settingsFromEnv } from '../packages/core/src/storage/config.js';
import { ensureBucket } from '../packages/tools/src/local/bucket.js';
import { ensureRunsTable } from '../packages/core/src/storage/runs-table.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { buildIfNeeded } from '../packages/tools/src/pipelines/build.js';
import { pushPipeline } from '../packages/tools/src/pipelines/push.js';
import { useTracerProvider } from '../packages/core/src/observability/tracing.js';
import { traceBatch } from '../packages/core/src/observability/spans.js';
import { formatTraceparent, inboundTrace, parseTraceparent, traceFromXRay } from '../packages/core/src/observability/trace-context.js';
import type { Manifest } from '../packages/core/src/manifest/types.js';
import type { Item } from '../packages/core/src/tensor/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { urlEvent } from '../packages/tools/test/lambda-host/events.js';
import { README_X } from './helpers/demo.js';
import { REPO } from './helpers/pipelines.js';

const FIXTURES = path.join(REPO, 'packages/tools/test/lambda-host/fixtures');
const XRAY = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
const XRAY_TRACE = '5759e988bd862e3fe1be46a994272793';
const API_KEY = 'tracing-lambda-key';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let undo: () => void;

beforeAll(() => { undo = useTracerProvider(provider); });
afterAll(async () => { undo?.(); await provider.shutdown(); });

describe('trace headers', () => {
  it('reads and writes W3C traceparent, ignoring what the spec says to ignore', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1 });
    expect(formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1)).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    // A later version is read by its version-00 prefix; version 00 with more, ff, zero ids and upper case are not traceparents.
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later')?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    for (const bad of ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', 'garbage']) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
  });

  it("maps an X-Ray root onto the W3C trace id (Root=1-5759e988-bd862e3fe1be46a994272793 is 5759e988bd862e3fe1be46a994272793)", () => {
    expect(traceFromXRay(XRAY)).toEqual({ traceId: XRAY_TRACE, parentSpanId: '53995c3f42cd8ad8', sampled: true });
    expect(traceFromXRay('Root=1-5759e988-bd862e3fe1be46a994272793')).toEqual({ traceId: XRAY_TRACE, sampled: false });
    expect(traceFromXRay('Root=2-5759e988-bd862e3fe1be46a994272793')).toBeUndefined();
    // traceparent wins over X-Ray; X-Ray (the request's, then the host's) over a new trace.
    expect(inboundTrace({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', xray: [XRAY] }).traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(inboundTrace({ xray: [undefined, XRAY] })).toMatchObject({ traceId: XRAY_TRACE, parentSpanId: '53995c3f42cd8ad8', origin: 'xray' });
    expect(inboundTrace({}).origin).toBe('new');
  });

  it('keeps a trace context in the stage payload, and drops one that does not parse', () => {
    const item: Item = { x: { datatype: 'FP32', shape: [1], data: Float32Array.of(1) } };
    const carrier = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'v=1' };
    const wire = JSON.parse(JSON.stringify(encodeStageRequest('p', 's', [item], carrier)));
    expect(decodeStageRequest(wire).trace).toEqual(carrier);
    expect(decodeStageRequest({ ...wire, trace: { traceparent: 'nope' } }).trace).toBeUndefined();
    expect(encodeStageRequest('p', 's', [item])).not.toHaveProperty('trace');
  });
});

describe('through the local Lambda host', () => {
  let host: LambdaHost;
  beforeAll(async () => {
    host = await LambdaHost.start({
      functions: [{ name: 'Trace', handler: 'handlers.stageTrace', root: FIXTURES, memoryMb: 128, timeoutSeconds: 5, environment: {} }],
      log: () => undefined,
    });
  });
  afterAll(async () => { await host?.close(); });

  it("delivers the batch span's traceparent to the stage function in its payload", async () => {
    const t = new LambdaTransport({ env: { AWS_REGION: 'us-east-1', ENSEMBLE_LAMBDA_ENDPOINT: host.url, ENSEMBLE_STAGE_FUNCTION_P_S: 'Trace' }, log: () => undefined });
    await t.load({ name: 'p', version: '1', stages: [{ name: 's', kind: 'onnx', timeoutMs: 5000, scale: { instances: 1, threads: 1, memoryMb: 128 } }] } as unknown as Manifest);
    try {
      const item: Item = { x: { datatype: 'FP32', shape: [1], data: Float32Array.of(1) } };
      const itemSpan = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
      exporter.reset();
      const result = await traceBatch('s', 'lambda', [itemSpan], (carrier) => t.invoke('p', 's', [item], undefined, carrier));
      const o = result.outcomes[0];
      if (!o.ok) throw new Error(o.error);
      const seen = JSON.parse(Buffer.from((o.items[0].trace.data as Uint8Array[])[0]).toString('utf8')) as { traceparent: string };
      const [batch] = exporter.getFinishedSpans().filter((s) => s.name === 'batch s');
      expect(seen.traceparent).toBe(formatTraceparent(itemSpan.traceId, batch.spanContext().spanId, 1));
      expect(batch.attributes['ensemble.transport']).toBe('lambda');
    } finally {
      await t.close();
    }
  });
});

describe('the stage handler and the gateway on Lambda', () => {
  let dir: string;
  let services: LocalServices;
  let baseEnv: Record<string, string>;
  let demo: Manifest;
  let gateway: LambdaGateway;
  const savedXRay = process.env._X_AMZN_TRACE_ID;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ensemble-trace-lambda-'));
    services = await startLocalServices({ dataDir: join(dir, 'data') });
    const settings = withLocalServices(settingsFromEnv({}, { bucket: 'weights', runsTable: 'runs' }), services);
    const s3 = makeS3Client(settings);
    const dynamo = makeDynamoClient(settings);
    try {
      await ensureBucket(s3, settings.bucket);
      await ensureRunsTable(dynamo, settings.runsTable);
      demo = await loadManifest(join(REPO, 'models/demo/pipeline.yaml'));
      await buildIfNeeded(demo);
      await pushPipeline(demo, { s3, bucket: settings.bucket });
    } finally {
      s3.destroy();
      dynamo.destroy();
    }
    baseEnv = {
      LAMBDA_TASK_ROOT: REPO, AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: services.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: services.credentials.secretAccessKey,
      ENSEMBLE_S3_ENDPOINT: services.s3Endpoint, ENSEMBLE_DYNAMODB_ENDPOINT: services.dynamoEndpoint,
      ENSEMBLE_BUCKET: 'weights', ENSEMBLE_RUNS_TABLE: 'runs', ENSEMBLE_CACHE_DIR: join(dir, 'cache'),
    };
    gateway = await createLambdaGateway({
      env: { ...baseEnv, ENSEMBLE_API_KEY: API_KEY, ENSEMBLE_MANIFESTS: 'models/demo/pipeline.yaml' },
      transport: (ctx) => new InProcessTransport(new S3WeightStore({ s3: ctx.s3, bucket: ctx.settings.bucket, cacheDir: join(dir, 'cache') })),
      log: () => undefined, requestLog: () => undefined,
    });
  });

  afterAll(async () => {
    if (savedXRay === undefined) delete process.env._X_AMZN_TRACE_ID;
    else process.env._X_AMZN_TRACE_ID = savedXRay;
    await gateway?.close();
    await services?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const rows = (x: number[]): Item[] => [{ input: { datatype: 'FP32', shape: [4], data: Float32Array.from(x.slice(0, 4)) } }];

  it('continues the payload\'s context with a span of its own, or the X-Ray trace of the invocation without one', async () => {
    const handler = await createStageHandler({ ...baseEnv, ENSEMBLE_PIPELINE: 'demo', ENSEMBLE_STAGE: 'branch_a', ENSEMBLE_MANIFEST: 'models/demo/pipeline.yaml', _X_AMZN_TRACE_ID: XRAY });
    exporter.reset();
    const carrier = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    const out = decodeStageResponse(await handler(JSON.parse(JSON.stringify(encodeStageRequest('demo', 'branch_a', rows(README_X), carrier)))), 'branch_a');
    expect(out.outcomes[0].ok).toBe(true);
    let [run] = exporter.getFinishedSpans().filter((s) => s.name === 'run branch_a');
    expect(run.kind).toBe(SpanKind.SERVER);
    expect(run.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(run.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(run.attributes).toMatchObject({ 'ensemble.stage': 'branch_a', 'ensemble.batch_size': 1 });

    exporter.reset();
    await handler(JSON.parse(JSON.stringify(encodeStageRequest('demo', 'branch_a', rows(README_X)))));
    [run] = exporter.getFinishedSpans().filter((s) => s.name === 'run branch_a');
    expect(run.spanContext().traceId).toBe(XRAY_TRACE);
    expect(run.parentSpanContext?.spanId).toBe('53995c3f42cd8ad8');
  });

  it("joins the invocation's X-Ray trace when the request has no traceparent: response header, run record and spans", async () => {
    process.env._X_AMZN_TRACE_ID = XRAY;
    exporter.reset();
    const headers = { 'x-api-key': API_KEY, 'content-type': 'application/json' };
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: README_X.slice(0, 4) }] });
    const res = await gateway.handler(urlEvent('POST', '/v2/models/demo/infer', { headers, body }));
    expect(res.statusCode).toBe(200);
    const h = res.headers as Record<string, string>;
    expect(h['x-ensemble-trace-id']).toBe(XRAY_TRACE);
    const rec = JSON.parse((await gateway.handler(urlEvent('GET', `/v2/runs/${h['x-ensemble-run-id']}`, { headers }))).body) as RunRecord;
    expect(rec.traceId).toBe(XRAY_TRACE);
    const request = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === XRAY_TRACE)!;
    expect(request.parentSpanContext?.spanId).toBe('53995c3f42cd8ad8');

    // A traceparent still wins.
    const own = await gateway.handler(urlEvent('POST', '/v2/models/demo/infer', { headers: { ...headers, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, body }));
    expect((own.headers as Record<string, string>)['x-ensemble-trace-id']).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
