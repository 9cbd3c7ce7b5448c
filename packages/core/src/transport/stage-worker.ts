import type { StageRuntime } from '../runtime/types.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import { createOnnxRuntime } from '../runtime/onnx.js';
import { EnsembleError } from '../errors.js';
import { markUsage, usageSince } from '../runtime/process-usage.js';
import { flushTracing, startTracing } from '../observability/tracing.js';
import { endStageRunSpan, startStageRunSpan } from '../observability/spans.js';

/**
 * One stage instance in its own process with its own ONNX Runtime session, so
 * `instances` sessions of a stage really run at once and a crash or hang takes
 * down one batch, not the gateway. (Not a worker thread: terminating a thread
 * inside a native session.run aborts the whole process.)
 */
if (!process.send) throw new Error('stage-worker must be started with an IPC channel (child_process.fork)');
const port = {
  postMessage: (m: FromWorker) => process.send!(m),
  on: (event: 'message', fn: (m: ToWorker) => void) => process.on(event, fn),
};
// The parent going away (even by SIGKILL) closes the channel: don't linger as an orphan, but send the spans
// this worker still holds first (bounded: a collector that does not answer must not keep it alive).
const exitAfterFlush = () => {
  const bounded = setTimeout(() => process.exit(0), 2_000);
  bounded.unref();
  void flushTracing().finally(() => process.exit(0));
};
process.on('disconnect', exitAfterFlush);
let runtime: StageRuntime | undefined;
let stageName = '';

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    const t0 = performance.now();
    let sessionMs = 0;
    const session = createOnnxRuntime({ stage: msg.stage, modelPath: msg.modelPath }).then((rt) => { sessionMs = performance.now() - t0; return rt; });
    // Tracing (when an OTLP endpoint is set in the environment the pool passed on) is up before the first batch.
    Promise.all([session, startTracing('ensemble')]).then(
      ([rt, traced]) => {
        runtime = rt;
        stageName = msg.stage.name;
        // The pool stops a worker with SIGTERM: a tracing worker sends its spans first (a hung one gets SIGKILL).
        if (traced) process.once('SIGTERM', exitAfterFlush);
        send({ type: 'ready', initMs: performance.now() - t0, sessionMs });
      },
      (e: unknown) => send({ type: 'init-error', message: e instanceof Error ? e.message : String(e) }),
    );
    return;
  }
  if (!runtime) { send({ type: 'error', id: msg.id, message: 'worker not initialised' }); return; }
  const span = startStageRunSpan(stageName, msg.trace);
  const t0 = performance.now();
  const mark = markUsage();
  runtime.run(msg.items).then(
    (result) => {
      const usage = usageSince(mark);
      endStageRunSpan(span, result);
      result.cpuMs = usage.cpuMs;
      result.peakRssBytes = usage.peakRssBytes;
      const servedMs = performance.now() - t0;
      result.servedMs = servedMs;
      // Stacking the items into a batch and splitting the outputs back: the session's own time is computeMs.
      result.transfer = { serializeMs: Math.max(0, servedMs - result.computeMs) };
      send({ type: 'result', id: msg.id, result });
    },
    (e: unknown) => {
      endStageRunSpan(span, undefined, e);
      send({ type: 'error', id: msg.id, message: e instanceof Error ? e.message : String(e), code: e instanceof EnsembleError ? e.code : 'stage_failed' });
    },
  );
});
