/**
 * OTLP/HTTP export end to end: `ensemble serve` with OTEL_EXPORTER_OTLP_ENDPOINT
 * set sends its spans, and its stage worker processes send theirs, to a
 * receiver this test runs (node:http, POST /v1/traces, the exporter's JSON),
 * all in the caller's trace: the worker's span is a child of the gateway's
 * batch span, which is what the worker protocol carried.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { postJson } from './helpers/http.js';
import { addDemo } from './helpers/pipelines.js';
import { README_X } from './helpers/demo.js';

interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; links?: { traceId: string; spanId: string }[] }
interface Received { service: string; span: OtlpSpan }

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER = 'b7ad6b7169203331';
const received: Received[] = [];
const contentTypes = new Set<string>();
let receiver: Server;
let root: string;
let server: RunningServer | undefined;
const saved = { ...process.env };

function attr(attrs: { key: string; value: { stringValue?: string } }[] | undefined, key: string): string | undefined {
  return attrs?.find((a) => a.key === key)?.value.stringValue;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans) {
        const service = attr(rs.resource.attributes, 'service.name') ?? '';
        for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ service, span });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  root = await mkdtemp(join(tmpdir(), 'ensemble-otlp-'));
  const modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  // The demo with its ONNX stages in worker processes (the demo itself runs them inline).
  const yaml = (await readFile(join(modelsDir, 'demo', 'pipeline.yaml'), 'utf8'))
    .replace(/^name: demo$/m, 'name: workers').replace(/, isolation: inline/g, '');
  await mkdir(join(modelsDir, 'workers'), { recursive: true });
  await writeFile(join(modelsDir, 'workers', 'pipeline.yaml'), yaml);
  // Worker processes inherit process.env: they export to the same receiver.
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'ensemble-under-test', OTEL_BSP_SCHEDULE_DELAY: '200' };
  Object.assign(process.env, otel);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, pipelines: ['workers'], env: otel, log: () => undefined });
});

afterAll(async () => {
  await server?.close();
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  await new Promise<void>((r) => receiver?.close(() => r()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('export over OTLP/HTTP', () => {
  it("sends the gateway's and the workers' spans of one request, in the caller's trace, to the configured endpoint", async () => {
    const r = await postJson(`${server!.url}/v2/models/workers/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: README_X }] }, {
      traceparent: `00-${TRACE}-${CALLER}-01`,
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ensemble-trace-id')).toBe(TRACE);
    // Closing flushes the gateway's spans; the workers send theirs as they are stopped.
    await server!.close();
    server = undefined;
    const want = ['POST /v2/models/{name}/infer', 'batch branch_a', 'batch branch_b', 'run branch_a', 'run branch_b'];
    for (let i = 0; i < 100 && !want.every((n) => received.some((x) => x.span.name === n)); i++) await new Promise((res) => setTimeout(res, 50));

    const mine = received.filter((x) => x.span.traceId === TRACE);
    expect(mine.map((x) => x.span.name)).toEqual(expect.arrayContaining([...want, 'stage branch_a', 'stage branch_b', 'stage average', 'batch average']));
    expect([...contentTypes]).toEqual(['application/json']);
    for (const x of mine) expect(x.service).toBe('ensemble-under-test');
    const byName = (n: string) => mine.filter((x) => x.span.name === n).map((x) => x.span);
    expect(byName('POST /v2/models/{name}/infer')[0].parentSpanId).toBe(CALLER);
    for (const stage of ['branch_a', 'branch_b']) {
      const [batch] = byName(`batch ${stage}`);
      const runs = byName(`run ${stage}`);
      // The worker's span continues the context the worker protocol carried: the batch span.
      expect(runs).toHaveLength(1);
      expect(runs[0].parentSpanId).toBe(batch.spanId);
      expect(batch.links?.map((l) => l.spanId).sort()).toEqual(byName(`stage ${stage}`).map((s) => s.spanId).sort());
    }
  });
});
