import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, decodeInferResponse, encodeInferRequest } from '../packages/core/src/tensor/codec.js';
import { toHalfBits } from '../packages/core/src/tensor/fp16.js';
import type { Datatype, Tensor, TensorData } from '../packages/core/src/tensor/types.js';
import type { RunRecord } from '../packages/core/src/storage/types.js';
import { README_BODY, README_X, demoExpected, expectClose } from './helpers/demo.js';
import { getJson, inferTensors, postJson } from './helpers/http.js';
import {
  GUARDED_MAX_BYTES, ONNX_DATATYPES, dtInput, dtOutput, addDemo, writeBusyPipeline, writeDatatypesPipeline,
  writeGuardedPipeline,
} from './helpers/pipelines.js';

let root: string;
let server: RunningServer;
let base: string;
/** What the gateway logged per request. */
const requestLines: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-http-'));
  const modelsDir = join(root, 'models');
  await addDemo(modelsDir);
  await writeDatatypesPipeline(modelsDir);
  await writeGuardedPipeline(modelsDir);
  await writeBusyPipeline(modelsDir);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir, env: {}, log: () => undefined, requestLog: (l) => requestLines.push(l) });
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

const infer = (model: string, body: unknown, headers?: Record<string, string>) => postJson(`${base}/v2/models/${model}/infer`, body, headers);
const demoBody = (x: number[], extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [x.length / 4, 4], data: x }], ...extra,
});

async function runRecord(id: string): Promise<RunRecord> {
  await server.env.runs.flush();
  const r = await getJson<RunRecord>(`${base}/v2/runs/${id}`);
  expect(r.status).toBe(200);
  return r.body;
}

describe('health and metadata', () => {
  it('answers live and ready', async () => {
    expect(await getJson(`${base}/v2/health/live`)).toMatchObject({ status: 200, body: { live: true } });
    expect(await getJson(`${base}/v2/health/ready`)).toMatchObject({ status: 200, body: { ready: true } });
  });

  it('describes the server', async () => {
    const r = await getJson(`${base}/v2`);
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('ensemble');
    expect(typeof r.body.version).toBe('string');
    expect(r.body.extensions).toContain('binary_tensor_data');
  });

  it('lists the models it serves', async () => {
    const r = await getJson(`${base}/v2/models`);
    expect(r.body.models).toEqual([
      { name: 'busy', version: '1', ready: true },
      { name: 'demo', version: '1', ready: true },
      { name: 'dtypes', version: '1', ready: true },
      { name: 'guarded', version: '2', ready: true },
    ]);
  });

  it('gives model metadata, also under /versions/{v}', async () => {
    const expected = {
      name: 'demo',
      versions: ['1'],
      platform: 'ensemble',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
    };
    const plain = await getJson(`${base}/v2/models/demo`);
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject(expected);
    expect(plain.body.stages.map((s: { name: string }) => s.name)).toEqual(['branch_a', 'branch_b', 'average']);
    const versioned = await getJson(`${base}/v2/models/demo/versions/1`);
    expect(versioned.status).toBe(200);
    expect(versioned.body).toEqual(plain.body);
  });

  it('answers model readiness', async () => {
    expect(await getJson(`${base}/v2/models/demo/ready`)).toMatchObject({ status: 200, body: { name: 'demo', ready: true } });
    expect(await getJson(`${base}/v2/models/guarded/versions/2/ready`)).toMatchObject({ status: 200, body: { ready: true } });
  });

  it('answers 404 for an unknown model or version, naming it', async () => {
    for (const path of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/nope/versions/1']) {
      const r = await getJson(`${base}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body.error).toContain("'nope'");
    }
    const wrong = await getJson(`${base}/v2/models/demo/versions/7`);
    expect(wrong.status).toBe(404);
    expect(wrong.body.error).toContain("'7'");
    const inferUnknown = await infer('nope', demoBody([1, 2, 3, 4]));
    expect(inferUnknown.status).toBe(404);
    expect(inferUnknown.body.error).toContain("'nope'");
    const inferWrongVersion = await postJson(`${base}/v2/models/demo/versions/7/infer`, demoBody([1, 2, 3, 4]));
    expect(inferWrongVersion.status).toBe(404);
    expect(inferWrongVersion.body.error).toContain("'7'");
    const route = await getJson(`${base}/v2/nothing/here`);
    expect(route.status).toBe(404);
    expect(route.body.error).toContain('/v2/nothing/here');
  });
});

describe('inference on the demo', () => {
  it('computes (relu(xWa+ba) + sigmoid(xWb+bb)) / 2 for the README request', async () => {
    const r = await infer('demo', README_BODY);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(r.body.model_name).toBe('demo');
    expect(r.body.model_version).toBe('1');
    expect(r.body.outputs).toHaveLength(1);
    const [y] = r.body.outputs;
    expect(y).toMatchObject({ name: 'y', datatype: 'FP32', shape: [2, 3] });
    expectClose(y.data, demoExpected(README_X));
    expect(r.body.parameters.run_id).toBe(r.headers.get('x-ensemble-run-id'));
  });

  it('answers requests a client pipelines on one connection, each in order, none taken for a client gone', async () => {
    // HTTP/1.1 lets a client send its next request before the last one's answer: the later ones wait
    // for their turn to answer, with no socket of their own until then.
    const { port } = new URL(base);
    const xs = [[1, 2, 3, 4], [0.5, -1, 0, 2], [-3, 0.25, 8, 1]];
    const wire = xs.map((x, i) => {
      const body = JSON.stringify({ id: `p${i}`, ...demoBody(x) });
      return `POST /v2/models/demo/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    }).join('');
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(wire));
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        got += chunk;
        if ((got.match(/HTTP\/1\.1 /g) ?? []).length === xs.length && got.trimEnd().endsWith('}')) { socket.end(); resolve(got); }
      });
      socket.on('error', reject);
      setTimeout(() => { socket.destroy(); reject(new Error(`timed out with: ${got.slice(0, 300)}`)); }, 10_000);
    });
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 200, 200]);
    const bodies = [...text.matchAll(/\r\n\r\n(\{.*?\})(?=HTTP\/1\.1 |$)/gs)].map((m) => JSON.parse(m[1]) as { id: string; outputs: { data: number[] }[] });
    expect(bodies.map((b) => b.id)).toEqual(['p0', 'p1', 'p2']);
    bodies.forEach((b, i) => expectClose(b.outputs[0].data, demoExpected(xs[i])));
  });

  it('accepts nested JSON data and the versioned route, and echoes the request id', async () => {
    const x = [[0.25, -0.5, 1, 2], [3, -3, 0.125, 0]];
    const r = await postJson(`${base}/v2/models/demo/versions/1/infer`, {
      id: 'req-42', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: x }],
    });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe('req-42');
    expectClose(r.body.outputs[0].data, demoExpected(x.flat()));
  });

  it('answers in binary with binary_data_output, and reads a binary request', async () => {
    const x = [1, 2, 3, 4, 0.5, -1, 0, 2, -4, 8, 0.75, 1.5];
    const xt: Tensor = { datatype: 'FP32', shape: [3, 4], data: Float32Array.from(x) };

    const binaryOut = await inferTensors(base, 'demo', { x: xt }, { parameters: { binary_data_output: true } });
    expect(binaryOut.headers.get('content-type')).toBe('application/octet-stream');
    expect(Number(binaryOut.headers.get(INFERENCE_HEADER_CONTENT_LENGTH))).toBeGreaterThan(0);
    expect(binaryOut.response.outputs[0].parameters?.binary_data_size).toBe(3 * 3 * 4);
    expect(binaryOut.tensors.y.shape).toEqual([3, 3]);
    expectClose(binaryOut.tensors.y.data as Float32Array, demoExpected(x));

    const binaryIn = await inferTensors(base, 'demo', { x: xt }, { binary: true, id: 'bin' });
    expect(binaryIn.headers.get('content-type')).toContain('application/json');
    expect(binaryIn.response.id).toBe('bin');
    expect(Array.from(binaryIn.tensors.y.data as Float32Array)).toEqual(Array.from(binaryOut.tensors.y.data as Float32Array));

    // Binary both ways, with the output asked for by name.
    const both = await inferTensors(base, 'demo', { x: xt }, { binary: true, outputs: [{ name: 'y', binary: true }] });
    expect(both.response.outputs[0].parameters?.binary_data_size).toBe(36);
    expect(Array.from(both.tensors.y.data as Float32Array)).toEqual(Array.from(binaryOut.tensors.y.data as Float32Array));
  });

  it('answers a request with zero rows with an empty output', async () => {
    const r = await infer('demo', { inputs: [{ name: 'x', datatype: 'FP32', shape: [0, 4], data: [] }] });
    expect(r.status).toBe(200);
    expect(r.body.outputs[0]).toMatchObject({ name: 'y', shape: [0, 3], data: [] });
  });
});

describe('bad requests', () => {
  const cases: [string, unknown, RegExp][] = [
    ['wrong datatype', { inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] }, /input 'x'.*INT32.*FP32/],
    ['wrong shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }] }, /input 'x'.*\[2,3\].*\[-1,4\]/],
    ['wrong rank', { inputs: [{ name: 'x', datatype: 'FP32', shape: [4], data: [1, 2, 3, 4] }] }, /input 'x'.*rank 1/],
    ['element count mismatch', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7] }] }, /input 'x'.*needs 8 elements.*7/],
    ['unknown input', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'z', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
      ],
    }, /unknown input 'z'/],
    ['missing input', { inputs: [] }, /missing input 'x'/],
    ['no inputs array', { id: 'a' }, /inputs/],
    ['malformed JSON', '{"inputs": [ {"name": "x", ', /malformed JSON/],
    ['unknown output', { ...demoBody([1, 2, 3, 4]), outputs: [{ name: 'nope' }] }, /unknown output 'nope'/],
    ['bad element', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 'three', 4] }] }, /input 'x'.*element 2/],
    ['bad timeout', { ...demoBody([1, 2, 3, 4]), parameters: { timeout: -5 } }, /timeout/],
    ['bad timeout_ms', { ...demoBody([1, 2, 3, 4]), parameters: { timeout_ms: 'soon' } }, /timeout_ms/],
    ['timeout and timeout_ms', { ...demoBody([1, 2, 3, 4]), parameters: { timeout: 5000, timeout_ms: 5 } }, /both set/],
    // Node's timers overflow past 2^31-1 ms and would fire at once.
    ['timeout_ms over the timer limit', { ...demoBody([1, 2, 3, 4]), parameters: { timeout_ms: 2 ** 31 } }, /timeout_ms 2147483648 is over the maximum of 2147483647 milliseconds/],
    ['timeout over the timer limit', { ...demoBody([1, 2, 3, 4]), parameters: { timeout: 2 ** 31 * 1000 } }, /timeout 2147483648000 is over the maximum of 2147483647000 microseconds/],
  ];
  it.each(cases)('%s -> 400 naming the problem', async (_name, body, message) => {
    const r = await infer('demo', body);
    expect(r.status).toBe(400);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(r.body.error).toMatch(message);
  });

  it('refuses a body over the pipeline\'s max_request_bytes with 413, with or without Content-Length', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => [i, i + 0.5]);
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [40, 2], data: rows }] });
    expect(body.length).toBeGreaterThan(GUARDED_MAX_BYTES);
    const declared = await infer('guarded', body);
    expect(declared.status).toBe(413);
    expect(declared.body.error).toContain(`${GUARDED_MAX_BYTES} byte limit`);

    // Chunked: no Content-Length, so the limit is enforced while reading.
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 64) c.enqueue(bytes.subarray(i, i + 64));
        c.close();
      },
    });
    const res = await fetch(`${base}/v2/models/guarded/infer`, {
      method: 'POST', body: stream, headers: { 'content-type': 'application/json' }, duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toContain(`${GUARDED_MAX_BYTES} byte limit`);

    // The same pipeline takes a small body.
    const small = await infer('guarded', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });
    expect(small.status).toBe(200);
    expect(small.body.model_version).toBe('2');
  });

  it('answers 500 naming the stage when a stage fails, and 504 when it or the request times out', async () => {
    const failed = await infer('guarded', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [-1, 0] }] });
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ error: "stage 'check' failed: x[0] is negative (-1)" });

    const stageTimeout = await infer('guarded', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [99, 0] }] });
    expect(stageTimeout.status).toBe(504);
    expect(stageTimeout.body).toEqual({ error: "stage 'check' timed out after 300 ms" });

    // Triton's clients send parameters.timeout in microseconds; timeout_ms is the millisecond form.
    for (const parameters of [{ timeout: 50_000 }, { timeout_ms: 50 }]) {
      const requestTimeout = await infer('guarded', { parameters, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [99, 0] }] });
      expect(requestTimeout.status).toBe(504);
      expect(requestTimeout.body).toEqual({ error: "request timed out after 50 ms waiting on stage 'check'" });
    }
  });

  it('serves a request whose timeout is long (up to the timer limit), or 0 microseconds (none)', async () => {
    for (const parameters of [{ timeout: 2 ** 31 }, { timeout: 0 }, { timeout_ms: 2 ** 31 - 1 }, { timeout: (2 ** 31 - 1) * 1000 }]) {
      const r = await infer('demo', demoBody([1, 2, 3, 4], { parameters }));
      expect(r.status, JSON.stringify(parameters)).toBe(200);
    }
  });
});

describe('overload', () => {
  it('answers 429 with Retry-After when other requests fill a stage queue', async () => {
    // The first request's two rows fill the queue (max_queue 2) for its 200 ms batching window.
    const first = infer('busy', { inputs: [{ name: 'x', datatype: 'INT32', shape: [2], data: [4, 5] }] });
    await new Promise((r) => setTimeout(r, 50));
    const over = await infer('busy', { inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [1] }] });
    expect(over.status).toBe(429);
    expect(over.body.error).toMatch(/stage 'pass' is overloaded.*max_queue 2/);
    const retry = over.headers.get('retry-after');
    expect(retry).toMatch(/^\d+$/);
    expect(Number(retry)).toBeGreaterThanOrEqual(1);
    const fits = await first;
    expect(fits.status).toBe(200);
    expect(fits.body.outputs[0]).toMatchObject({ name: 'y', datatype: 'INT32', shape: [2], data: [4, 5] });
  });

  it('runs a request with more rows than the queue holds on an idle server: its own rows wait for room', async () => {
    const r = await infer('busy', { inputs: [{ name: 'x', datatype: 'INT32', shape: [5], data: [1, 2, 3, 4, 5] }] });
    expect(r.status).toBe(200);
    expect(r.body.outputs[0]).toMatchObject({ name: 'y', shape: [5], data: [1, 2, 3, 4, 5] });
  });
});

describe('run records', () => {
  it('records a good and a failed request, readable by id and listed newest first', async () => {
    const good = await infer('demo', demoBody([1, 2, 3, 4]));
    expect(good.status).toBe(200);
    const goodId = good.headers.get('x-ensemble-run-id')!;
    const bad = await infer('demo', { inputs: [{ name: 'x', datatype: 'INT32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    expect(bad.status).toBe(400);
    const badId = bad.headers.get('x-ensemble-run-id')!;
    const broken = await infer('guarded', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [-2, 0] }] });
    const brokenId = broken.headers.get('x-ensemble-run-id')!;
    const last = await infer('demo', demoBody([4, 3, 2, 1]));
    const lastId = last.headers.get('x-ensemble-run-id')!;
    expect(new Set([goodId, badId, brokenId, lastId]).size).toBe(4);

    const g = await runRecord(goodId);
    expect(g).toMatchObject({ id: goodId, pipeline: 'demo', version: '1', status: 'succeeded', httpStatus: 200, transport: 'worker-pool' });
    expect(g.error).toBeUndefined();
    expect(Date.parse(g.startedAt)).not.toBeNaN();
    expect(g.durationMs).toBeGreaterThan(0);
    expect(g.stages.map((s) => s.stage).sort()).toEqual(['average', 'branch_a', 'branch_b']);
    for (const s of g.stages) {
      // One row, no other request in flight: one batch of one.
      expect(s, s.stage).toMatchObject({ batches: 1, batchSizes: [1], items: 1 });
      expect(s.error).toBeUndefined();
    }

    const b = await runRecord(badId);
    expect(b).toMatchObject({ id: badId, pipeline: 'demo', version: '1', status: 'failed', httpStatus: 400, stages: [] });
    expect(b.error).toBe(bad.body.error);

    const k = await runRecord(brokenId);
    expect(k).toMatchObject({ pipeline: 'guarded', version: '2', status: 'failed', httpStatus: 500 });
    expect(k.error).toBe("stage 'check' failed: x[0] is negative (-2)");
    expect(k.stages).toEqual([expect.objectContaining({ stage: 'check', error: 'x[0] is negative (-2)', items: 1, batchSizes: [1] })]);

    // A client that goes away mid-request still leaves a record (499), and its stage's work is dropped.
    const ac = new AbortController();
    const gone = fetch(`${base}/v2/models/guarded/infer`, {
      method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [99, 1] }] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await expect(gone).rejects.toThrow();
    let abandoned: RunRecord | undefined;
    for (let i = 0; i < 100 && !abandoned; i++) {
      await server.env.runs.flush();
      const runs = (await getJson<{ runs: RunRecord[] }>(`${base}/v2/models/guarded/runs`)).body.runs;
      abandoned = runs.find((r) => r.httpStatus === 499);
      if (!abandoned) await new Promise((r) => setTimeout(r, 50));
    }
    expect(abandoned, 'a 499 record for the abandoned request').toBeDefined();
    expect(abandoned).toMatchObject({ pipeline: 'guarded', status: 'failed', error: 'client went away' });

    const missing = await getJson(`${base}/v2/runs/00000000-0000-4000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toContain('00000000-0000-4000-8000-000000000000');
    // Not an id we hand out: refused before any lookup.
    const malformed = await getJson(`${base}/v2/runs/no-such-run`);
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toContain("'no-such-run' is not a run id");

    const list = await getJson<{ runs: RunRecord[] }>(`${base}/v2/models/demo/runs`);
    expect(list.status).toBe(200);
    const ids = list.body.runs.map((r) => r.id);
    // Newest first: ours in reverse order of sending, and no other pipeline's runs.
    const ours = ids.filter((id) => [goodId, badId, lastId].includes(id));
    expect(ours).toEqual([lastId, badId, goodId]);
    expect(ids).not.toContain(brokenId);
    const times = list.body.runs.map((r) => Date.parse(r.startedAt));
    expect(times).toEqual([...times].sort((p, q) => q - p));
    const limited = await getJson<{ runs: RunRecord[] }>(`${base}/v2/models/demo/runs?limit=2`);
    expect(limited.body.runs.map((r) => r.id)).toEqual([lastId, badId]);
  });
});

describe('access log', () => {
  it('logs one line per request: method, path, status, ms, and the run id and pipeline of an inference', async () => {
    requestLines.length = 0;
    const good = await infer('demo', demoBody([1, 2, 3, 4]));
    const runId = good.headers.get('x-ensemble-run-id')!;
    const bad = await infer('guarded', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [-2, 0] }] });
    await getJson(`${base}/v2/models/demo`);
    await getJson(`${base}/v2/nothing/here`);
    expect(requestLines).toHaveLength(4);
    expect(requestLines[0]).toMatch(new RegExp(`^POST /v2/models/demo/infer 200 \\d+\\.\\dms run=${runId} pipeline=demo$`));
    expect(requestLines[1]).toMatch(new RegExp(`^POST /v2/models/guarded/infer 500 \\d+\\.\\dms run=${bad.headers.get('x-ensemble-run-id')} pipeline=guarded$`));
    expect(requestLines[2]).toMatch(/^GET \/v2\/models\/demo 200 \d+\.\dms$/);
    expect(requestLines[3]).toMatch(/^GET \/v2\/nothing\/here 404 \d+\.\dms$/);
  });
});

describe('unknown models', () => {
  it('writes no run record for an unknown model or version, logging one line instead', async () => {
    requestLines.length = 0;
    const unknown = await infer('invented-name', demoBody([1, 2, 3, 4]));
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-ensemble-run-id')).toBeNull();
    const wrongVersion = await postJson(`${base}/v2/models/demo/versions/7/infer`, demoBody([1, 2, 3, 4]));
    expect(wrongVersion.status).toBe(404);
    expect(wrongVersion.headers.get('x-ensemble-run-id')).toBeNull();
    await server.env.runs.flush();
    expect(await server.env.runs.listByPipeline('invented-name', 10)).toEqual([]);
    expect((await server.env.runs.listByPipeline('demo', 1000)).filter((r) => r.version === '7')).toEqual([]);
    expect(requestLines.filter((l) => l.includes('/v2/models/invented-name/infer'))).toHaveLength(1);
    expect(requestLines.filter((l) => l.includes('/v2/models/demo/versions/7/infer'))).toHaveLength(1);
  });

  it('still records a failure of a known model', async () => {
    const bad = await infer('demo', { inputs: [] });
    expect(bad.status).toBe(400);
    expect((await runRecord(bad.headers.get('x-ensemble-run-id')!)).httpStatus).toBe(400);
  });

  it('answers 404 for the runs of a model it does not serve', async () => {
    const r = await getJson(`${base}/v2/models/invented-name/runs`);
    expect(r.status).toBe(404);
    expect(r.body.error).toContain("'invented-name'");
  });
});

/** Values covering each datatype's edges, as the JSON wire writes them (so what comes back must be equal). */
const JSON_VALUES: Record<Datatype, unknown[]> = {
  BOOL: [true, false, true, false, false, true],
  UINT8: [0, 1, 127, 128, 254, 255],
  UINT16: [0, 1, 256, 32767, 32768, 65535],
  UINT32: [0, 1, 65536, 2147483647, 2147483648, 4294967295],
  UINT64: [0, 1, 9007199254740991, '9007199254740993', '18446744073709551615', 4294967296],
  INT8: [-128, -1, 0, 1, 100, 127],
  INT16: [-32768, -1, 0, 1, 1000, 32767],
  INT32: [-2147483648, -1, 0, 1, 123456789, 2147483647],
  INT64: ['-9223372036854775808', -9007199254740991, -1, 0, '9007199254740993', '9223372036854775807'],
  FP16: [0, 1.5, -2, 65504, 6.103515625e-5, 5.960464477539063e-8],
  FP32: [0, Math.fround(0.1), -3.4028234663852886e38, 1.401298464324817e-45, 'NaN', '-Infinity'],
  FP64: [0.1, -Number.MAX_VALUE, Number.MIN_VALUE, 1 / 3, 'Infinity', 'NaN'],
  BYTES: ['', 'hello', 'héllo wörld', '日本語', 'tab\there', 'x'.repeat(100)],
};

/** The same kinds of values as typed storage for the binary wire, with bit patterns JSON cannot carry (-0, NaN payloads). */
function binaryTensor(dt: Datatype): Tensor {
  const shape = [2, 3];
  const data: Record<Datatype, TensorData> = {
    BOOL: Uint8Array.of(1, 0, 1, 0, 0, 1),
    UINT8: Uint8Array.of(0, 1, 127, 128, 254, 255),
    UINT16: Uint16Array.of(0, 1, 256, 32767, 32768, 65535),
    UINT32: Uint32Array.of(0, 1, 65536, 2147483647, 2147483648, 4294967295),
    UINT64: BigUint64Array.of(0n, 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, 4294967296n),
    INT8: Int8Array.of(-128, -1, 0, 1, 100, 127),
    INT16: Int16Array.of(-32768, -1, 0, 1, 1000, 32767),
    INT32: Int32Array.of(-2147483648, -1, 0, 1, 123456789, 2147483647),
    INT64: BigInt64Array.of(-(2n ** 63n), -(2n ** 53n) - 1n, -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n),
    FP16: Uint16Array.of(toHalfBits(-0), toHalfBits(1.5), 0x7c00, 0xfc00, 0x7e01, 0x0001),
    FP32: new Float32Array(new Uint32Array([0x80000000, 0x7fc00001, 0x7f800000, 0x00000001, 0x3dcccccd, 0xff7fffff]).buffer),
    FP64: Float64Array.of(-0, Number.MIN_VALUE, -Number.MAX_VALUE, Math.PI, -Infinity, 1 / 3),
    BYTES: ['', 'hello', 'héllo wörld', '日本語', 'a\tb', 'y'.repeat(300)].map((s) => new TextEncoder().encode(s)),
  };
  return { datatype: dt, shape, data: data[dt] };
}

/** Raw bytes only the function stage can carry: NUL, invalid UTF-8, empty. */
const RAW_ELEMENTS = [Uint8Array.of(0, 255, 254, 0), new Uint8Array(0)];

function bytesOf(t: Tensor): number[][] {
  if (Array.isArray(t.data)) return t.data.map((e) => Array.from(e));
  const d = t.data;
  return [Array.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength))];
}

describe('every datatype through the gateway', () => {
  it('round-trips each datatype in JSON exactly', async () => {
    const inputs = ONNX_DATATYPES.map((dt) => ({ name: dtInput(dt), datatype: dt, shape: [2, 3], data: JSON_VALUES[dt] }));
    inputs.push({ name: 'raw_in', datatype: 'BYTES', shape: [2], data: ['plain', 'text'] });
    const r = await infer('dtypes', { inputs });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const outputs = new Map<string, { datatype: string; shape: number[]; data: unknown[] }>(
      r.body.outputs.map((o: { name: string }) => [o.name, o]),
    );
    for (const dt of ONNX_DATATYPES) {
      const o = outputs.get(dtOutput(dt));
      expect(o, dt).toMatchObject({ datatype: dt, shape: [2, 3] });
      // 64-bit integers come back as exact JSON numbers, which this JSON.parse rounds (test/wire-compat.test.ts reads them exactly).
      const want = dt === 'INT64' || dt === 'UINT64' ? JSON_VALUES[dt].map(Number) : JSON_VALUES[dt];
      expect(o!.data, dt).toEqual(want);
    }
    expect(outputs.get('raw_out')).toMatchObject({ datatype: 'BYTES', shape: [2], data: ['plain', 'text'] });
  });

  it('round-trips each datatype in binary form bit for bit, raw bytes included', async () => {
    const inputs: Record<string, Tensor> = {};
    for (const dt of ONNX_DATATYPES) inputs[dtInput(dt)] = binaryTensor(dt);
    inputs.raw_in = { datatype: 'BYTES', shape: [2], data: RAW_ELEMENTS };
    const r = await inferTensors(base, 'dtypes', inputs, { binary: true, parameters: { binary_data_output: true } });
    for (const dt of ONNX_DATATYPES) {
      const out = r.tensors[dtOutput(dt)];
      expect(out.datatype, dt).toBe(dt);
      expect(out.shape, dt).toEqual([2, 3]);
      expect(bytesOf(out), dt).toEqual(bytesOf(inputs[dtInput(dt)]));
    }
    expect(bytesOf(r.tensors.raw_out)).toEqual(RAW_ELEMENTS.map((e) => Array.from(e)));
  });

  it('returns only the requested outputs, each in the form asked for, and bytes that are not UTF-8 in binary', async () => {
    const inputs: Record<string, Tensor> = {};
    for (const dt of ONNX_DATATYPES) inputs[dtInput(dt)] = binaryTensor(dt);
    inputs.raw_in = { datatype: 'BYTES', shape: [2], data: RAW_ELEMENTS };
    const encoded = encodeInferRequest(inputs, {
      binary: true,
      outputs: [{ name: 'y_int8' }, { name: 'y_fp16', binary: true }, { name: 'raw_out' }],
    });
    const res = await fetch(`${base}/v2/models/dtypes/infer`, {
      method: 'POST', body: encoded.body,
      headers: { 'content-type': 'application/octet-stream', [INFERENCE_HEADER_CONTENT_LENGTH]: String(encoded.headerLength) },
    });
    expect(res.status).toBe(200);
    const { response, tensors } = decodeInferResponse(
      new Uint8Array(await res.arrayBuffer()), Number(res.headers.get(INFERENCE_HEADER_CONTENT_LENGTH)),
    );
    expect(response.outputs.map((o) => o.name)).toEqual(['y_int8', 'y_fp16', 'raw_out']);
    const [int8, fp16, raw] = response.outputs;
    expect(int8.parameters?.binary_data_size).toBeUndefined(); // JSON, as asked
    expect(fp16.parameters?.binary_data_size).toBe(12);
    // Not asked for in binary, but invalid UTF-8 cannot be JSON: it comes back binary all the same.
    expect(raw.parameters?.binary_data_size).toBeGreaterThan(0);
    expect(Array.from(tensors.y_int8.data as Int8Array)).toEqual([-128, -1, 0, 1, 100, 127]);
    expect(bytesOf(tensors.y_fp16)).toEqual(bytesOf(inputs.x_fp16));
    expect(bytesOf(tensors.raw_out)).toEqual(RAW_ELEMENTS.map((e) => Array.from(e)));
  });
});
