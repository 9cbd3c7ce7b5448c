/** Helpers for tests that serve a models folder and compare it with onnxruntime-node on the whole model. */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { startServer, type RunningServer } from '../../packages/tools/src/serve/server.js';

/** What onnxruntime-node computes on the whole model: each output's dims and values. */
export async function runWhole(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, { dims: readonly number[]; data: number[] }>> {
  const s = await ort.InferenceSession.create(model);
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: t.dims, data: Array.from(t.data as Float32Array) }]));
  } finally {
    await s.release();
  }
}

/** Serves one pipeline of `modelsDir` in-process (a data folder of its own under `root`) while `run` runs. */
export async function withPipeline(root: string, modelsDir: string, pipeline: string, run: (server: RunningServer) => Promise<void>): Promise<void> {
  const server = await startServer({ port: 0, dataDir: join(root, `data-${pipeline}`), modelsDir, pipelines: [pipeline], env: {}, log: () => undefined });
  try {
    await run(server);
  } finally {
    await server.close();
  }
}
