import { parentPort } from 'node:worker_threads';
import type { StageRuntime } from '../runtime/types.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import { EnsembleError } from '../errors.js';

/**
 * One stage instance in its own thread with its own ONNX Runtime session, so
 * `instances` sessions of a stage really run at once and a crash or hang takes
 * down one batch, not the gateway.
 */
const port = parentPort!;
let runtime: StageRuntime | undefined;

function send(msg: FromWorker): void {
  // Outputs are this thread's own buffers: move them instead of copying.
  const transfer: ArrayBuffer[] = [];
  if (msg.type === 'result') {
    const seen = new Set<ArrayBufferLike>();
    for (const o of msg.result.outcomes) {
      if (!o.ok) continue;
      for (const item of o.items) {
        for (const t of Object.values(item)) {
          const bufs = Array.isArray(t.data) ? t.data.map((b) => b.buffer) : [t.data.buffer];
          for (const b of bufs) if (!seen.has(b) && b instanceof ArrayBuffer) { seen.add(b); transfer.push(b); }
        }
      }
    }
  }
  port.postMessage(msg, transfer);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    const t0 = performance.now();
    createOnnxRuntime({ stage: msg.stage, modelPath: msg.modelPath }).then(
      (rt) => { runtime = rt; send({ type: 'ready', initMs: performance.now() - t0 }); },
      (e: unknown) => send({ type: 'init-error', message: e instanceof Error ? e.message : String(e) }),
    );
    return;
  }
  if (!runtime) { send({ type: 'error', id: msg.id, message: 'worker not initialised' }); return; }
  runtime.run(msg.items).then(
    (result) => send({ type: 'result', id: msg.id, result }),
    (e: unknown) => send({ type: 'error', id: msg.id, message: e instanceof Error ? e.message : String(e), status: e instanceof EnsembleError ? e.status : 500 }),
  );
});
