/**
 * The hand-written server scripts/init-defaults.ts compares `ensemble init`
 * with: one Hono route that reads a Triton binary-tensor request, runs the
 * model with session.run (ONNX Runtime's default threads: one per core) and
 * answers its outputs in binary. No validation, batching, metrics or records.
 *
 *   npx tsx scripts/plain-server.ts model.onnx 18890
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import * as ort from 'onnxruntime-node';

const [file, port] = process.argv.slice(2);
const session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'all' });
const app = new Hono();
app.get('/ready', (c) => c.text('ok'));
app.post('/v2/models/m/infer', async (c) => {
  const body = Buffer.from(await c.req.arrayBuffer());
  const headerLength = Number(c.req.header('inference-header-content-length'));
  const header = JSON.parse(body.subarray(0, headerLength).toString()) as { inputs: { name: string; shape: number[]; parameters: { binary_data_size: number } }[] };
  const feeds: Record<string, ort.Tensor> = {};
  let at = headerLength;
  for (const x of header.inputs) {
    const size = x.parameters.binary_data_size;
    const data = new Float32Array(size / 4);
    new Uint8Array(data.buffer).set(body.subarray(at, at + size));
    at += size;
    feeds[x.name] = new ort.Tensor('float32', data, x.shape);
  }
  const outputs = Object.entries(await session.run(feeds));
  const json = Buffer.from(JSON.stringify({
    model_name: 'm',
    outputs: outputs.map(([name, t]) => ({ name, datatype: 'FP32', shape: t.dims, parameters: { binary_data_size: (t.data as Float32Array).byteLength } })),
  }));
  const blobs = outputs.map(([, t]) => { const d = t.data as Float32Array; return Buffer.from(d.buffer, d.byteOffset, d.byteLength); });
  return new Response(Buffer.concat([json, ...blobs]), {
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.byteLength) },
  });
});
serve({ fetch: app.fetch, port: Number(port), hostname: '127.0.0.1' });
