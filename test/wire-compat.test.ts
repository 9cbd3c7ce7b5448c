/**
 * What Triton's and KServe's clients actually put on the wire, through a
 * started server over real HTTP: compressed bodies both ways, JSON labelled as
 * an octet stream, 64-bit integers and bare NaN tokens, trailing slashes and
 * wrong methods, the classification extension, and the extensions not offered.
 */
import { request as httpRequest } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../packages/tools/src/serve/server.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, decodeInferResponse } from '../packages/core/src/tensor/codec.js';
import { loadManifest } from '../packages/core/src/manifest/load.js';
import { README_BODY, README_X, demoExpected, expectClose } from './helpers/demo.js';
import { getJson, postJson } from './helpers/http.js';
import { addDemo } from './helpers/pipelines.js';

let root: string;
let server: RunningServer;
let base: string;

/** The byte limit of `scores`: a gzip bomb must fit under it compressed. */
const SCORES_MAX_BYTES = 200_000;

async function write(file: string, text: string): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, text);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ensemble-wire-'));
  const models = join(root, 'models');
  await addDemo(models);
  // passthrough: 64-bit integers and floats through a function stage, untouched.
  await write(join(models, 'passthrough', 'stages', 'pass.ts'), 'export default { process: (item: any) => ({ a: item.a, b: item.b, f: item.f }) };\n');
  await write(join(models, 'passthrough', 'pipeline.yaml'), `
name: passthrough
inputs: [{ name: a, datatype: INT64, shape: [-1] }, { name: b, datatype: UINT64, shape: [-1] }, { name: f, datatype: FP32, shape: [-1] }]
outputs: [{ name: ya, datatype: INT64, shape: [-1] }, { name: yb, datatype: UINT64, shape: [-1] }, { name: yf, datatype: FP32, shape: [-1] }]
stages:
  - { name: pass, kind: function, module: stages/pass.ts, inputs: { a: a, b: b, f: f }, outputs: { a: ya, b: yb, f: yf } }
`);
  // echo: one BYTES input, so raw bodies are taken; the element comes back as it arrived.
  await write(join(models, 'echo', 'stages', 'echo.ts'), 'export default { process: (item: any) => ({ v: item.v }) };\n');
  await write(join(models, 'echo', 'pipeline.yaml'), `
name: echo
inputs: [{ name: blob, datatype: BYTES, shape: [-1] }]
outputs: [{ name: same, datatype: BYTES, shape: [-1] }]
stages:
  - { name: echo, kind: function, module: stages/echo.ts, inputs: { v: blob }, outputs: { v: same } }
`);
  // scores: four class scores per item, labelled from a file, and the same scores unlabelled.
  await write(join(models, 'scores', 'labels.txt'), 'cat\ndog\nbird\nfish\n');
  await write(join(models, 'scores', 'stages', 'copy.ts'), 'export default { process: (item: any) => ({ a: item.x, b: item.x }) };\n');
  await write(join(models, 'scores', 'pipeline.yaml'), `
name: scores
max_request_bytes: ${SCORES_MAX_BYTES}
inputs: [{ name: x, datatype: FP32, shape: [-1, 4] }]
outputs:
  - { name: labelled, datatype: FP32, shape: [-1, 4], labels_file: labels.txt }
  - { name: plain, datatype: FP32, shape: [-1, 4] }
stages:
  - { name: copy, kind: function, module: stages/copy.ts, inputs: { x: x }, outputs: { a: labelled, b: plain } }
`);
  server = await startServer({ port: 0, dataDir: join(root, 'data'), modelsDir: models, env: {}, log: () => undefined, requestLog: () => undefined });
  base = server.url;
});

afterAll(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

interface RawReply { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** node:http, so the body arrives as sent (fetch would decompress it and hide how). */
function raw(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}
const json = (r: RawReply) => JSON.parse(r.body.toString('utf8'));
const demoRequest = README_BODY;
const DEMO = JSON.parse(README_BODY) as Record<string, unknown>;

describe('compressed request bodies', () => {
  it('decodes gzip, x-gzip and deflate JSON bodies', async () => {
    for (const [encoding, body] of [['gzip', gzipSync(demoRequest)], ['x-gzip', gzipSync(demoRequest)], ['deflate', deflateSync(demoRequest)]] as const) {
      const r = await raw('POST', '/v2/models/demo/infer', body, { 'content-type': 'application/json', 'content-encoding': encoding });
      expect(r.status, `${encoding}: ${r.body}`).toBe(200);
      expectClose(json(r).outputs[0].data, demoExpected(README_X));
    }
  });

  it('answers 413 for a body that inflates past max_request_bytes (a gzip bomb), 400 for one that is not gzip', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.byteLength).toBeLessThan(SCORES_MAX_BYTES);
    const r = await raw('POST', '/v2/models/scores/infer', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(r.status).toBe(413);
    expect(json(r).error).toBe(`request body decoded from gzip is over the ${SCORES_MAX_BYTES} byte limit`);
    const broken = await raw('POST', '/v2/models/demo/infer', demoRequest, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(broken.status).toBe(400);
    expect(json(broken).error).toMatch(/^request body is not valid gzip data/);
  });

  it('answers 415 with Accept-Encoding for an encoding it does not decode', async () => {
    const r = await raw('POST', '/v2/models/demo/infer', demoRequest, { 'content-type': 'application/json', 'content-encoding': 'br' });
    expect(r.status).toBe(415);
    expect(r.headers['accept-encoding']).toBe('gzip, deflate');
    expect(json(r).error).toBe("Content-Encoding 'br' is not supported; send the body as is, or encoded with gzip or deflate");
  });
});

describe('compressed answers', () => {
  const rows = 400;
  const x = Array.from({ length: rows * 4 }, (_, i) => (i % 13) / 4);
  const binaryRequest = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: x }], parameters: { binary_data_output: true } });

  it('compresses the whole binary answer, Inference-Header-Content-Length counting the decoded JSON header', async () => {
    const plain = await raw('POST', '/v2/models/demo/infer', binaryRequest, { 'content-type': 'application/json' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    for (const [encoding, decode] of [['gzip', gunzipSync], ['deflate', inflateSync]] as const) {
      const r = await raw('POST', '/v2/models/demo/infer', binaryRequest, { 'content-type': 'application/json', 'accept-encoding': encoding });
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBe(encoding);
      expect(r.headers.vary).toMatch(/Accept-Encoding/);
      expect(Number(r.headers['content-length'])).toBe(r.body.byteLength);
      const body = decode(r.body);
      // The run id differs per request; the header length is the same, as in the plain answer.
      const headerLength = Number(r.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]);
      expect(headerLength).toBe(Number(plain.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]));
      const { tensors } = decodeInferResponse(new Uint8Array(body), headerLength);
      const expected = decodeInferResponse(new Uint8Array(plain.body), headerLength).tensors;
      expect(Array.from(tensors.y.data as Float32Array)).toEqual(Array.from(expected.y.data as Float32Array));
    }
  });

  it('picks by q-value, and leaves small answers and q=0 uncompressed', async () => {
    const q = await raw('POST', '/v2/models/demo/infer', binaryRequest, { 'content-type': 'application/json', 'accept-encoding': 'gzip;q=0.2, deflate;q=0.8' });
    expect(q.headers['content-encoding']).toBe('deflate');
    const refused = await raw('POST', '/v2/models/demo/infer', binaryRequest, { 'content-type': 'application/json', 'accept-encoding': 'gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
    const small = await raw('GET', '/v2/health/live', undefined, { 'accept-encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(json(small)).toEqual({ live: true });
  });
});

describe('JSON labelled application/octet-stream (tritonclient.http.aio)', () => {
  it('reads an OIP request object as JSON, on a model without raw bodies and on one with', async () => {
    const demo = await raw('POST', '/v2/models/demo/infer', demoRequest, { 'content-type': 'application/octet-stream' });
    expect(demo.status, demo.body.toString()).toBe(200);
    expectClose(json(demo).outputs[0].data, demoExpected(README_X));
    const body = JSON.stringify({ inputs: [{ name: 'blob', datatype: 'BYTES', shape: [1], data: ['hello'] }] });
    const echo = await raw('POST', '/v2/models/echo/infer', body, { 'content-type': 'application/octet-stream' });
    expect(echo.status).toBe(200);
    expect(json(echo).outputs[0]).toMatchObject({ name: 'same', shape: [1], data: ['hello'] });
  });

  it('still takes a body that is not an OIP request object as the raw bytes of the one BYTES input', async () => {
    for (const body of ['{"not": "a request"}', '\u0089PNG not json']) {
      const r = await raw('POST', '/v2/models/echo/infer', body, { 'content-type': 'application/octet-stream' });
      expect(r.status).toBe(200);
      expect(json(r).outputs[0].data).toEqual([body]);
    }
  });
});

describe("Triton's raw binary request (Inference-Header-Content-Length: 0)", () => {
  const rawHeaders = { 'content-type': 'application/octet-stream', [INFERENCE_HEADER_CONTENT_LENGTH]: '0' };

  it('takes the whole body as one item of the single input, its free dim from the size, and answers every output binary', async () => {
    const row = Float32Array.from(README_X.slice(0, 4));
    const r = await raw('POST', '/v2/models/demo/infer', new Uint8Array(row.buffer), rawHeaders);
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(Number(r.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()])).toBeGreaterThan(0);
    const { response, tensors } = decodeInferResponse(new Uint8Array(r.body), Number(r.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]));
    expect(response.outputs.every((o) => typeof o.parameters?.binary_data_size === 'number')).toBe(true);
    const y = tensors[response.outputs[0].name];
    expect(y.shape[0]).toBe(1);
    expectClose(Array.from(y.data as Float32Array), demoExpected(README_X.slice(0, 4)));
    // A BYTES input of one element per item: the body is that element, without a length prefix.
    const echo = await raw('POST', '/v2/models/echo/infer', 'hello', rawHeaders);
    expect(echo.status).toBe(200);
    const back = decodeInferResponse(new Uint8Array(echo.body), Number(echo.headers[INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase()]));
    expect(back.tensors.same.shape).toEqual([1]);
    expect(Buffer.from((back.tensors.same.data as Uint8Array[])[0]).toString()).toBe('hello');
  });

  it('refuses, naming why, a size that is not whole elements and a model of several inputs', async () => {
    const odd = await raw('POST', '/v2/models/demo/infer', new Uint8Array(15), rawHeaders);
    expect(odd.status).toBe(400);
    expect(json(odd).error).toContain('raw binary request (Inference-Header-Content-Length: 0): 15 bytes is not 16');
    const several = await raw('POST', '/v2/models/passthrough/infer', new Uint8Array(8), rawHeaders);
    expect(several.status).toBe(400);
    expect(json(several).error).toContain("model 'passthrough' has 3 inputs");
  });
});

describe('64-bit integers and non-finite floats in JSON', () => {
  const body = '{"inputs":['
    + '{"name":"a","datatype":"INT64","shape":[5],"data":[9007199254740992,9007199254740993,9223372036854775807,-9223372036854775808,-1]},'
    + '{"name":"b","datatype":"UINT64","shape":[5],"data":[18446744073709551615,"18446744073709551614",0,1,9007199254740992]},'
    + '{"name":"f","datatype":"FP32","shape":[5],"data":[NaN,Infinity,-Infinity,1.5,-0.25]}]}';

  it('reads integers at and beyond 2^53 exactly, and bare NaN/Infinity tokens; writes every digit back', async () => {
    const r = await raw('POST', '/v2/models/passthrough/infer', body, { 'content-type': 'application/json' });
    expect(r.status, r.body.toString()).toBe(200);
    const text = r.body.toString('utf8');
    expect(text).toContain('"data":[9007199254740992,9007199254740993,9223372036854775807,-9223372036854775808,-1]');
    expect(text).toContain('"data":[18446744073709551615,18446744073709551614,0,1,9007199254740992]');
    // Non-finite floats go back as strings every JSON parser reads.
    expect(text).toContain('"data":["NaN","Infinity","-Infinity",1.5,-0.25]');
    const { tensors } = decodeInferResponse(new Uint8Array(r.body));
    expect(Array.from(tensors.ya.data as BigInt64Array)).toEqual([2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -1n]);
    expect(Array.from(tensors.yb.data as BigUint64Array)).toEqual([2n ** 64n - 1n, 2n ** 64n - 2n, 0n, 1n, 2n ** 53n]);
  });

  it('answers 400 naming the tensor for a value beyond int64 or uint64', async () => {
    const a = await postJson(`${base}/v2/models/passthrough/infer`,
      body.replace('9223372036854775807', '9223372036854775808'));
    expect(a.status).toBe(400);
    expect(a.body.error).toBe("input 'a': element 2 is 9223372036854775808, out of range for INT64");
    const b = await postJson(`${base}/v2/models/passthrough/infer`, body.replace('18446744073709551615', '18446744073709551616'));
    expect(b.status).toBe(400);
    expect(b.body.error).toBe("input 'b': element 0 is 18446744073709551616, out of range for UINT64");
  });
});

describe('paths and methods', () => {
  it('serves every route with a trailing slash too', async () => {
    expect((await getJson(`${base}/v2/`)).body).toEqual((await getJson(`${base}/v2`)).body);
    expect((await getJson(`${base}/v2/models/demo/`)).body.name).toBe('demo');
    const r = await postJson(`${base}/v2/models/demo/infer/`, DEMO);
    expect(r.status).toBe(200);
  });

  it('answers 405 with Allow for a wrong method on a known path, 404 for an unknown path', async () => {
    const get = await raw('GET', '/v2/models/demo/infer');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(json(get).error).toBe('GET is not served on /v2/models/demo/infer; use POST');
    const post = await raw('POST', '/v2/health/live', '');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await raw('GET', '/v2/nothing/here')).status).toBe(404);
    // One trailing slash is the route; two are no route, not a 405 that names the method asked as the one to use.
    expect((await raw('GET', '/v2/health/live//')).status).toBe(404);
    expect((await raw('POST', '/v2/models/demo/infer//', '{}')).status).toBe(404);
  });
});

describe('classification extension', () => {
  const x = { name: 'x', datatype: 'FP32', shape: [2, 4], data: [0.1, 0.7, 0.15, 0.05, 2, -1, 3, 2.5] };
  const classify = (outputs: unknown[]) => postJson(`${base}/v2/models/scores/infer`, { inputs: [x], outputs });

  it('returns the top k of each item as "value:index[:label]", shape [items, k], and is listed in /v2', async () => {
    const r = await classify([{ name: 'labelled', parameters: { classification: 2 } }, { name: 'plain', parameters: { classification: 3 } }]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const [labelled, plain] = r.body.outputs;
    expect(labelled).toEqual({ name: 'labelled', datatype: 'BYTES', shape: [2, 2], data: ['0.700000:1:dog', '0.150000:2:bird', '3.000000:2:bird', '2.500000:3:fish'] });
    expect(plain).toEqual({ name: 'plain', datatype: 'BYTES', shape: [2, 3], data: ['0.700000:1', '0.150000:2', '0.100000:0', '3.000000:2', '2.500000:3', '2.000000:0'] });
    expect((await getJson(`${base}/v2`)).body.extensions).toContain('classification');
  });

  it('answers 400 for k beyond the classes, a k that is not a positive integer, and a non-numeric output', async () => {
    const over = await classify([{ name: 'plain', parameters: { classification: 5 } }]);
    expect(over.status).toBe(400);
    expect(over.body.error).toBe("requested output 'plain': classification 5 is more than the 4 classes of each item");
    const zero = await classify([{ name: 'plain', parameters: { classification: 0 } }]);
    expect(zero.status).toBe(400);
    expect(zero.body.error).toMatch(/classification must be a positive integer/);
    const bytes = await postJson(`${base}/v2/models/echo/infer`, {
      inputs: [{ name: 'blob', datatype: 'BYTES', shape: [1], data: ['a'] }], outputs: [{ name: 'same', parameters: { classification: 1 } }],
    });
    expect(bytes.status).toBe(400);
    expect(bytes.body.error).toBe("requested output 'same': classification needs a numeric output; 'same' is BYTES");
  });

  it('checks an output\'s labels when the manifest loads, naming the field', async () => {
    const dir = join(root, 'bad-labels');
    const manifest = (output: string) => `
name: bad
inputs: [{ name: x, datatype: FP32, shape: [-1, 3] }]
outputs: [${output}]
stages:
  - { name: s, kind: function, module: s.ts, inputs: { x: x }, outputs: { x: y } }
`;
    await write(join(dir, 's.ts'), 'export default { process: (i: any) => i };\n');
    const cases: [string, RegExp][] = [
      ['{ name: y, datatype: FP32, shape: [-1, 3], labels: [a, b] }', /outputs\[0\]\.labels: tensor 'y' has 3 classes per item .* but 2 labels/],
      ['{ name: y, datatype: FP32, shape: [-1, 3], labels_file: missing.txt }', /outputs\[0\]\.labels_file: cannot read the labels file/],
      ['{ name: y, datatype: BYTES, shape: [-1], labels: [a] }', /outputs\[0\]\.labels: tensor 'y' is BYTES/],
      ['{ name: y, datatype: FP32, shape: [-1, 3], labels: [a, b, c], labels_file: l.txt }', /give labels inline or in labels_file, not both/],
    ];
    for (const [output, message] of cases) {
      await write(join(dir, 'pipeline.yaml'), manifest(output));
      await expect(loadManifest(join(dir, 'pipeline.yaml')), output).rejects.toThrow(message);
    }
    await write(join(dir, 'pipeline.yaml'), manifest('{ name: y, datatype: FP32, shape: [-1, 3], labels: [a, b, c] }'));
    expect((await loadManifest(join(dir, 'pipeline.yaml'))).outputs[0].labels).toEqual(['a', 'b', 'c']);
  });
});

describe('extensions not offered', () => {
  it('are not listed, and their routes answer 400 saying so', async () => {
    const { extensions } = (await getJson(`${base}/v2`)).body;
    for (const e of ['system_shared_memory', 'cuda_shared_memory', 'logging', 'trace']) expect(extensions).not.toContain(e);
    const cases: [string, string, string][] = [
      ['GET', '/v2/systemsharedmemory/status', 'system_shared_memory'],
      ['POST', '/v2/systemsharedmemory/region/r0/register', 'system_shared_memory'],
      ['POST', '/v2/systemsharedmemory/unregister', 'system_shared_memory'],
      ['GET', '/v2/cudasharedmemory/region/r0/status', 'cuda_shared_memory'],
      ['POST', '/v2/cudasharedmemory/region/r0/unregister', 'cuda_shared_memory'],
      ['GET', '/v2/logging', 'logging'],
      ['POST', '/v2/logging', 'logging'],
      ['GET', '/v2/trace/setting', 'trace'],
    ];
    for (const [method, path, extension] of cases) {
      const r = await raw(method, path, method === 'POST' ? '{}' : undefined, { 'content-type': 'application/json' });
      expect(r.status, path).toBe(400);
      expect(json(r).error, path).toBe(`this server does not offer the ${extension} extension`);
    }
  });

  it('answers 400 for an infer request whose input or output names a shared-memory region', async () => {
    const input = await postJson(`${base}/v2/models/demo/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { shared_memory_region: 'in0', shared_memory_byte_size: 16 } }],
    });
    expect(input.status).toBe(400);
    expect(input.body.error).toMatch(/^input 'x': this server does not offer the system_shared_memory or cuda_shared_memory extension/);
    const output = await postJson(`${base}/v2/models/demo/infer`, { ...DEMO, outputs: [{ name: 'y', parameters: { shared_memory_region: 'out0' } }] });
    expect(output.status).toBe(400);
    expect(output.body.error).toMatch(/^requested output 'y': this server does not offer the system_shared_memory/);
  });
});
