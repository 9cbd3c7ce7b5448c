import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import * as ort from 'onnxruntime-node';

export interface BaselineOptions {
  /** The demo's two branch models. */
  branchA: string;
  branchB: string;
  /** Intra-op threads per session (default 1: tiny models gain nothing from more). */
  threads?: number;
}

export interface BaselineServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The hand-written server the tiny pipeline is compared with: one Hono route
 * that parses the Open Inference Protocol JSON body, runs both demo models
 * with `session.run` in this process and averages them. No validation beyond
 * what it needs, no DAG, no batching, no run records.
 */
export async function startBaselineServer(opts: BaselineOptions): Promise<BaselineServer> {
  const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const a = await ort.InferenceSession.create(opts.branchA, so);
  const b = await ort.InferenceSession.create(opts.branchB, so);
  const app = new Hono();
  app.post('/v2/models/demo/infer', async (c) => {
    const body = await c.req.json<{ inputs: { name: string; shape: number[]; data: number[] }[] }>();
    const x = body.inputs[0];
    const feeds = { input: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) };
    const [ra, rb] = await Promise.all([a.run(feeds), b.run(feeds)]);
    const ya = ra.output.data as Float32Array;
    const yb = rb.output.data as Float32Array;
    const y = new Array<number>(ya.length);
    for (let i = 0; i < ya.length; i++) y[i] = (ya[i] + yb[i]) / 2;
    return c.json({ model_name: 'demo', outputs: [{ name: 'y', datatype: 'FP32', shape: ra.output.dims, data: y }] });
  });
  const server = await new Promise<ServerType>((res, rej) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => res(s));
    s.once('error', rej);
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await a.release();
      await b.release();
    },
  };
}
