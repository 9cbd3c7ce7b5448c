/**
 * Distributed tracing through the real gateway (startServer over HTTP) and
 * the real executor, with spans caught by the OpenTelemetry SDK's
 * InMemorySpanExporter: the request span continues the caller's
 * traceparent, each stage records a span per item, and a batch's span links
 * to the item spans of every request it served.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { useTracerProvider } from '../packages/core/src/observability/tracing.js';
import { startRequestSpan, endRequestSpan } from '../packages/core/src/observability/spans.js';
import { inboundTrace } from '../packages/core/src/observability/trace-context.js';
import { Executor } from '../packages/core/src/executor/executor.js';
import { InProcessTransport } from '../packages/core/src/transport/in-process.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { getJson, postJson } from './helpers/http.js';
import { addDemo } from './helpers/pipelines.js';
import { README_X } from './helpers/demo.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let undo: () => void;
let root: string;
let server: RunningServer;

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const demoBody = (x: number[]) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [x.length / 4, 4], data: x }] });

beforeAll(async () => {
  undo = useTracerProvider(provider);
  root = await mkdtemp(join(tmpdir(), 'ensemble-tracing-'));
  const modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  // A function stage that fails: its 5xx marks the spans as errors.
  await mkdir(join(modelsDir, 'failing'), { recursive: true });
  await writeFile(join(modelsDir, 'failing', 'boom.ts'), `export default { process() { throw new Error('boom: the stage gave up'); } };\n`);
  await writeFile(join(modelsDir, 'failing', 'pipeline.yaml'), `
name: failing
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
stages:
  - name: boom
    kind: function
    module: boom.ts
    inputs: [x]
    outputs: [{ name: y, datatype: FP32, shape: [-1, 4] }]
`);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, env: {}, log: () => undefined });
});

afterAll(async () => {
  await server?.close();
  undo?.();
  await provider.shutdown();
  if (root) await rm(root, { recursive: true, force: true });
});

afterEach(() => exporter.reset());

const spans = (traceId: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

async function runRecord(id: string): Promise<RunRecord> {
  await server.env.runs.flush();
  return (await getJson<RunRecord>(`${server.url}/v2/runs/${id}`)).body;
}

describe('an infer request in a trace', () => {
  it("continues the caller's traceparent and tracestate: request span, a span per stage per item, batch spans, ids in the response and the run record", async () => {
    const r = await postJson(`${server.url}/v2/models/demo/infer`, demoBody(README_X), {
      traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`, tracestate: 'vendor=abc,other=1',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ensemble-trace-id')).toBe(CALLER_TRACE);
    const [version, traceId, serverSpan, flags] = r.headers.get('traceresponse')!.split('-');
    expect([version, traceId, flags]).toEqual(['00', CALLER_TRACE, '01']);
    expect((await runRecord(r.headers.get('x-ensemble-run-id')!)).traceId).toBe(CALLER_TRACE);

    const all = spans(CALLER_TRACE);
    const request = all.find((s) => s.kind === SpanKind.SERVER)!;
    // Named for the route, as the HTTP conventions ask; the model is an attribute.
    expect(request.name).toBe('POST /v2/models/{name}/infer');
    expect(request.spanContext().spanId).toBe(serverSpan);
    expect(parentOf(request)).toBe(CALLER_SPAN);
    expect(request.spanContext().traceState?.get('vendor')).toBe('abc');
    expect(request.attributes).toMatchObject({
      model_name: 'demo', model_version: '1', 'http.request.method': 'POST', 'http.route': '/v2/models/{name}/infer', 'http.response.status_code': 200,
      'ensemble.run_id': r.headers.get('x-ensemble-run-id'), 'url.scheme': 'http', 'url.path': '/v2/models/demo/infer', 'server.address': '127.0.0.1',
    });
    expect(request.attributes['server.port']).toBe(Number(new URL(server.url).port));

    // Two rows, three stages: six item spans, children of the request span, each knowing its batch.
    const items = all.filter((s) => s.name.startsWith('stage '));
    expect(items.map((s) => s.name).sort()).toEqual(['stage average', 'stage average', 'stage branch_a', 'stage branch_a', 'stage branch_b', 'stage branch_b']);
    for (const s of items) {
      expect(parentOf(s)).toBe(serverSpan);
      expect(s.attributes['ensemble.batch_size']).toBe(2);
      expect(typeof s.attributes['ensemble.queue_wait_ms']).toBe('number');
    }
    // One batch per stage (the request's rows share it), linked to both of its items' spans; one trace, so a child of it.
    const batches = all.filter((s) => s.name.startsWith('batch '));
    expect(batches.map((s) => s.name).sort()).toEqual(['batch average', 'batch branch_a', 'batch branch_b']);
    for (const b of batches) {
      const stage = b.attributes['ensemble.stage'];
      const mine = items.filter((s) => s.attributes['ensemble.stage'] === stage).map((s) => s.spanContext().spanId).sort();
      expect(b.links.map((l) => l.context.spanId).sort()).toEqual(mine);
      expect(b.kind).toBe(SpanKind.CLIENT);
      expect(b.attributes['ensemble.batch.traces']).toBe(1);
      expect(mine).toContain(parentOf(b));
    }
  });

  it('starts a trace when the request brings none, and names it in the response and the run record', async () => {
    const r = await postJson(`${server.url}/v2/models/demo/infer`, demoBody(README_X.slice(0, 4)));
    expect(r.status).toBe(200);
    const traceId = r.headers.get('x-ensemble-trace-id')!;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(r.headers.get('traceresponse')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect((await runRecord(r.headers.get('x-ensemble-run-id')!)).traceId).toBe(traceId);
    const request = spans(traceId).find((s) => s.kind === SpanKind.SERVER)!;
    expect(parentOf(request)).toBeUndefined();
    expect(spans(traceId).filter((s) => s.name.startsWith('stage '))).toHaveLength(3);
  });

  it("respects a caller's unsampled traceparent: its trace id is kept, nothing is recorded", async () => {
    const trace = 'aaaabbbbccccddddeeeeffff00001111';
    const r = await postJson(`${server.url}/v2/models/demo/infer`, demoBody(README_X), { traceparent: `00-${trace}-${CALLER_SPAN}-00` });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ensemble-trace-id')).toBe(trace);
    expect(r.headers.get('traceresponse')).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-00$`));
    expect(spans(trace)).toEqual([]);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('ignores a malformed traceparent and starts a new trace', async () => {
    const r = await postJson(`${server.url}/v2/models/demo/infer`, demoBody(README_X), { traceparent: `00-${'0'.repeat(32)}-${CALLER_SPAN}-01` });
    expect(r.status).toBe(200);
    const traceId = r.headers.get('x-ensemble-trace-id')!;
    expect(traceId).not.toBe('0'.repeat(32));
    expect(parentOf(spans(traceId).find((s) => s.kind === SpanKind.SERVER)!)).toBeUndefined();
  });

  it('marks a failing stage ERROR with its message on the item and request spans (the batch counts it); a 400 is only noted', async () => {
    const r = await postJson(`${server.url}/v2/models/failing/infer`, demoBody(README_X.slice(0, 4)));
    expect(r.status).toBeGreaterThanOrEqual(500);
    const all = spans(r.headers.get('x-ensemble-trace-id')!);
    for (const name of ['POST /v2/models/{name}/infer', 'stage boom']) {
      const s = all.find((x) => x.name === name);
      expect(s?.status.code, name).toBe(SpanStatusCode.ERROR);
      expect(s?.status.message, name).toContain('boom: the stage gave up');
    }
    // The item failed inside a call that returned: the call's span says how many, and is not itself a failure.
    expect(all.find((x) => x.name === 'batch boom')?.attributes['ensemble.batch.failed_items']).toBe(1);
    expect(all.find((x) => x.kind === SpanKind.SERVER)?.attributes['http.response.status_code']).toBe(r.status);

    const bad = await postJson(`${server.url}/v2/models/demo/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
    const request = spans(bad.headers.get('x-ensemble-trace-id')!).find((x) => x.kind === SpanKind.SERVER)!;
    expect(request.status.code).toBe(SpanStatusCode.UNSET);
    // A client's error is no error.type on a server span (the HTTP conventions); why it was refused is our own attribute.
    expect(request.attributes).toMatchObject({ 'http.response.status_code': 400, 'ensemble.error_code': 'invalid_input' });
    expect(request.attributes['error.type']).toBeUndefined();
  });

  it('names an unknown model by the route template, not by the name asked for', async () => {
    const r = await postJson(`${server.url}/v2/models/nosuch/infer`, demoBody(README_X));
    expect(r.status).toBe(404);
    const request = spans(r.headers.get('x-ensemble-trace-id')!).find((x) => x.kind === SpanKind.SERVER)!;
    expect(request.name).toBe('POST /v2/models/{name}/infer');
    expect(request.attributes['http.response.status_code']).toBe(404);
  });
});

describe('a batch shared by two requests', () => {
  it('is its own trace, linked to the item spans of both requests, and parented on neither', async () => {
    // The real executor on real sessions; both requests submit in one synchronous run, so their items share each stage's batch.
    const manifest = await loadManifest(join(root, 'models', 'demo', 'pipeline.yaml'));
    const transport = new InProcessTransport(server.env.weights);
    const ex = await Executor.create(manifest, transport);
    try {
      const x = { datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.from(README_X.slice(0, 4)) };
      const traces = [inboundTrace({}), inboundTrace({})].map((t) => startRequestSpan(t, 'POST /v2/models/demo/infer', {}));
      await Promise.all(traces.map((trace) => ex.run({ x }, { trace })));
      for (const t of traces) endRequestSpan(t, 200, {});
      const [one, two] = traces.map((t) => t.traceId);
      expect(one).not.toBe(two);
      const finished = exporter.getFinishedSpans();
      for (const stage of ['branch_a', 'branch_b', 'average']) {
        const items = finished.filter((s) => s.name === `stage ${stage}`);
        expect(items.map((s) => s.spanContext().traceId).sort()).toEqual([one, two].sort());
        for (const s of items) expect(s.attributes['ensemble.batch_size']).toBe(2);
        const batch = finished.filter((s) => s.name === `batch ${stage}`);
        expect(batch).toHaveLength(1);
        expect(batch[0].links.map((l) => l.context.spanId).sort()).toEqual(items.map((s) => s.spanContext().spanId).sort());
        expect(batch[0].links.map((l) => l.context.traceId).sort()).toEqual([one, two].sort());
        expect(parentOf(batch[0])).toBeUndefined();
        expect([one, two]).not.toContain(batch[0].spanContext().traceId);
        expect(batch[0].attributes).toMatchObject({ 'ensemble.batch_size': 2, 'ensemble.batch.traces': 2 });
      }
    } finally {
      await ex.close();
      await transport.close();
    }
  });
});
